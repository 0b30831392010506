"""MiniRocket parameters: dilations, quantiles, channel combinations and example draws.

Everything here reproduces the reference recipe (aeon ``MiniRocket`` / sktime
``MiniRocketMultivariate`` with an integer seed) with a private ``numpy.random.RandomState``;
no global RNG state is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError
from .kernels import KERNEL_LENGTH, MIN_LENGTH, NUM_KERNELS

_GOLDEN_RATIO = (np.sqrt(5.0) + 1.0) / 2.0
_MAX_SEED = 2**32 - 1


def _dilation_schedule(
    length: int, num_features: int, max_dilations_per_kernel: int
) -> tuple[np.ndarray, int, float]:
    """The exponentially spaced values ``2**linspace(0, log2((length-1)/8), n)`` (this platform's
    ``pow``), the features per kernel and the multiplier of the reference rule."""
    if length < MIN_LENGTH:
        raise InputError(f"series length must be at least {MIN_LENGTH}, got {length}")
    per_kernel = num_features // NUM_KERNELS
    if per_kernel < 1:
        raise InputError(f"num_features must be at least {NUM_KERNELS}, got {num_features}")
    if max_dilations_per_kernel < 1:
        raise InputError(f"max_dilations_per_kernel must be >= 1, got {max_dilations_per_kernel}")
    n_dil = min(per_kernel, max_dilations_per_kernel)
    max_exponent = np.log2((length - 1) / (KERNEL_LENGTH - 1))
    return np.logspace(0, max_exponent, n_dil, base=2), per_kernel, per_kernel / n_dil


def _table(raw: np.ndarray, per_kernel: int, multiplier: float) -> tuple[np.ndarray, np.ndarray]:
    dilations, counts = np.unique(raw.astype(np.int32), return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32)
    remainder = per_kernel - int(per_dilation.sum())
    for i in range(remainder):
        per_dilation[i % len(per_dilation)] += 1
    return dilations.astype(np.int32), per_dilation.astype(np.int32)


def fit_dilations(
    length: int, num_features: int = 10_000, max_dilations_per_kernel: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(dilations, features_per_dilation)`` (int32) for series of ``length`` points.

    Dilations are spaced exponentially between 1 and ``(length - 1) / 8``; the feature counts
    are spread over them and the remainder handed out round-robin from the smallest dilation.
    Where a spaced value is an integer in exact arithmetic, truncation depends on the platform's
    ``pow`` (as it does in the reference): see :func:`dilation_tables`.

    Parameters
    ----------
    length : int
        Series length (>= 9).
    num_features : int, default 10000
        Requested feature count (>= 84).
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations (>= 1).

    Returns
    -------
    dilations, features_per_dilation : numpy.ndarray
        int32, one entry per distinct dilation; ``84 * features_per_dilation.sum()`` is the feature count.

    Raises
    ------
    InputError
        ``length < 9``, ``num_features < 84`` or ``max_dilations_per_kernel < 1``.
    """
    raw, per_kernel, multiplier = _dilation_schedule(length, num_features, max_dilations_per_kernel)
    return _table(raw, per_kernel, multiplier)


def dilation_tables(
    length: int, num_features: int = 10_000, max_dilations_per_kernel: int = 32
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every ``(dilations, features_per_dilation)`` the reference rule gives on *some* platform.

    A spaced value within 1e-9 of an integer ``m`` (other than an exact power of two reached with an
    integer exponent, which every ``pow`` returns exactly) truncates to ``m`` or ``m - 1`` depending on
    the last bit of the platform's ``pow``; e.g. length 25 gives ``2**log2(3)``, which is 3.0 on some
    machines and 2.9999999999999996 on others. One table means the length is platform-independent.

    Parameters
    ----------
    length, num_features, max_dilations_per_kernel : int
        As in :func:`fit_dilations`.

    Returns
    -------
    list of tuple of numpy.ndarray
        The distinct ``(dilations, features_per_dilation)`` tables, at least one.

    Raises
    ------
    InputError
        As :func:`fit_dilations`.
    """
    raw, per_kernel, multiplier = _dilation_schedule(length, num_features, max_dilations_per_kernel)
    near = np.rint(raw)
    exponents = np.log2(np.maximum(near, 1.0))
    exact = (exponents == np.rint(exponents)) & (near == 2.0 ** np.rint(exponents))
    ambiguous = np.flatnonzero((np.abs(raw - near) <= 1e-9 * near) & ~exact)[:8]
    tables: list[tuple[np.ndarray, np.ndarray]] = []
    for bits in range(2 ** len(ambiguous)):
        variant = np.floor(raw)
        for j, idx in enumerate(ambiguous):
            variant[idx] = near[idx] - 1 if (bits >> j) & 1 else near[idx]
        table = _table(variant, per_kernel, multiplier)
        if not any(np.array_equal(table[0], t[0]) and np.array_equal(table[1], t[1]) for t in tables):
            tables.append(table)
    return tables


def quantile_levels(n: int) -> np.ndarray:
    """Return the golden-ratio low-discrepancy levels ``frac((f + 1) * phi)`` as float32.

    Parameters
    ----------
    n : int
        Number of levels (one per feature).

    Returns
    -------
    numpy.ndarray
        float32 (n,), in (0, 1).
    """
    return ((np.arange(1, n + 1, dtype=np.float64) * _GOLDEN_RATIO) % 1.0).astype(np.float32)


def resolve_seed(random_state: int | np.random.RandomState | None) -> int:
    """Turn ``random_state`` into the integer seed the recipe uses.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        An int is used as is; a ``RandomState`` gives ``randint(2**31 - 1)`` (as aeon does, advancing
        it); ``None`` draws a fresh seed from the operating system so that the fitted model still records it.

    Returns
    -------
    int
        The seed, in [0, 2**32 - 1].

    Raises
    ------
    TypeError
        ``random_state`` is of another type (a bool included).
    InputError
        An int outside [0, 2**32 - 1].
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(
            f"random_state must be an int, a numpy RandomState or None, got {type(random_state).__name__}"
        )
    seed = int(random_state)
    if not 0 <= seed <= _MAX_SEED:
        raise InputError(f"random_state must be between 0 and 2**32 - 1, got {seed}")
    return seed


def draw_channel_combinations(
    n_channels: int, n_combinations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(channels_per_combination, channel_indices)`` in the reference order.

    Parameters
    ----------
    n_channels : int
        Channels of the data.
    n_combinations : int
        ``84 * n_dilations``.
    seed : int
        Seed of a private ``RandomState``.

    Returns
    -------
    channels_per_combination : numpy.ndarray
        int32 (n_combinations,), each between 1 and ``min(n_channels, 9)``.
    channel_indices : numpy.ndarray
        int32, the channels of every combination, concatenated (no repeat within one).
    """
    rng = np.random.RandomState(seed)
    max_exponent = np.log2(min(n_channels, KERNEL_LENGTH) + 1)
    per_comb = (2 ** rng.uniform(0, max_exponent, n_combinations)).astype(np.int32)
    indices = np.concatenate(
        [rng.choice(n_channels, k, replace=False) for k in per_comb]
    ).astype(np.int32)
    return per_comb, indices


def draw_example_indices(n_examples: int, n_combinations: int, seed: int) -> np.ndarray:
    """Draw one fit example per combination, with replacement, as numba's re-seeded RNG does.

    Parameters
    ----------
    n_examples : int
        Rows of the training data.
    n_combinations : int
        ``84 * n_dilations``.
    seed : int
        Seed of a private ``RandomState``.

    Returns
    -------
    numpy.ndarray
        int64 (n_combinations,) row indices in [0, n_examples).
    """
    rng = np.random.RandomState(seed)
    return np.array([rng.randint(n_examples) for _ in range(n_combinations)], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class MiniRocketParameters:
    """Everything a fitted MiniRocket transform needs, plus how it was drawn.

    ``biases`` is ``None`` until the bias fit has run (a *plan*); see :func:`plan`. Build one with
    :func:`~rocketstream.core.fit` or :func:`plan`, or read one with :func:`~rocketstream.core.load`.

    Parameters
    ----------
    n_channels, length : int
        Channels and series length of the training data (the reference length for a variable-length model).
    num_features : int
        Requested feature count; :attr:`n_features_out` is ``84 * (num_features // 84)``.
    max_dilations_per_kernel : int
        Cap on the number of dilations.
    seed : int
        Seed of every draw.
    n_fit_examples : int
        Rows of the training data.
    dilations, features_per_dilation : numpy.ndarray
        int32, per dilation (see :func:`fit_dilations`).
    channels_per_combination, channel_indices : numpy.ndarray
        int32, the drawn channels of each of the ``84 * n_dilations`` combinations.
    example_indices : numpy.ndarray
        int64, the training row drawn for each combination's bias fit.
    biases : numpy.ndarray or None
        float32 (n_features_out,), None for a plan.
    extra : dict
        Provenance and metadata (source, version...); ``"variable_length"`` marks the variable-length rule.
    """

    n_channels: int
    length: int
    num_features: int
    max_dilations_per_kernel: int
    seed: int
    n_fit_examples: int
    dilations: np.ndarray
    features_per_dilation: np.ndarray
    channels_per_combination: np.ndarray
    channel_indices: np.ndarray
    example_indices: np.ndarray
    biases: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_dilations(self) -> int:
        """Number of distinct dilations."""
        return len(self.dilations)

    @property
    def n_combinations(self) -> int:
        """Number of (kernel, dilation) combinations, ``84 * n_dilations``."""
        return NUM_KERNELS * self.n_dilations

    @property
    def n_features_out(self) -> int:
        """Number of output features, ``84 * (num_features // 84)``."""
        return NUM_KERNELS * int(self.features_per_dilation.sum())

    @property
    def quantiles(self) -> np.ndarray:
        """float32 bias quantile level of every feature (see :func:`quantile_levels`)."""
        return quantile_levels(self.n_features_out)

    @property
    def variable_length(self) -> bool:
        """Fitted for unequal lengths (:mod:`.variable`): every PPV over each series' own length."""
        return "variable_length" in self.extra

    @property
    def is_fitted(self) -> bool:
        """Whether the biases are fitted (False for a plan)."""
        return self.biases is not None

    def per_dilation(self) -> list[tuple[int, int]]:
        """``(dilation, features_per_dilation)`` pairs as Python ints, in order.

        Returns
        -------
        list of tuple of int
        """
        return list(zip(self.dilations.tolist(), self.features_per_dilation.tolist(), strict=True))

    def feature_offsets(self) -> np.ndarray:
        """Start of each dilation's block of ``84 * nfd[i]`` features.

        Returns
        -------
        numpy.ndarray
            int64 (n_dilations,).
        """
        sizes = NUM_KERNELS * self.features_per_dilation.astype(np.int64)
        return np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def combination_channels(self) -> list[np.ndarray]:
        """The channel list of each combination ``c = i * 84 + k``, in drawn order.

        Returns
        -------
        list of numpy.ndarray
            ``84 * n_dilations`` int32 arrays.
        """
        ends = np.cumsum(self.channels_per_combination)
        return np.split(self.channel_indices, ends[:-1])

    def with_biases(self, biases: np.ndarray) -> MiniRocketParameters:
        """A copy with ``biases`` (converted to contiguous float32).

        Parameters
        ----------
        biases : numpy.ndarray
            (n_features_out,) values.

        Returns
        -------
        MiniRocketParameters

        Raises
        ------
        ValueError
            ``biases`` has another shape.
        """
        biases = np.ascontiguousarray(biases, dtype=np.float32)
        if biases.shape != (self.n_features_out,):
            raise ValueError(f"expected {self.n_features_out} biases, got shape {biases.shape}")
        return replace(self, biases=biases)

    def with_extra(self, extra: dict) -> MiniRocketParameters:
        """A copy with ``extra`` merged into the provenance/metadata dict.

        Parameters
        ----------
        extra : dict
            Entries to add or replace.

        Returns
        -------
        MiniRocketParameters
        """
        return replace(self, extra={**self.extra, **extra})

    def feature_table(self) -> dict[str, np.ndarray]:
        """Per-feature coordinates: dilation, kernel, quantile slot, padded flag, combination.

        Returns
        -------
        dict of str to numpy.ndarray
            (n_features_out,) arrays ``dilation``, ``dilation_index``, ``kernel``, ``quantile_index``,
            ``combination`` (int32) and ``padded`` (bool: the PPV counts over the whole padded output).
        """
        nfd = self.features_per_dilation.astype(np.int64)
        dil_idx = np.repeat(np.arange(self.n_dilations), NUM_KERNELS * nfd)
        kernel = np.concatenate(
            [np.repeat(np.arange(NUM_KERNELS), n) for n in nfd]
        )
        slot = np.concatenate([np.tile(np.arange(n), NUM_KERNELS) for n in nfd])
        return {
            "dilation": self.dilations[dil_idx].astype(np.int32),
            "dilation_index": dil_idx.astype(np.int32),
            "kernel": kernel.astype(np.int32),
            "quantile_index": slot.astype(np.int32),
            "padded": ((dil_idx + kernel) % 2 == 0),
            "combination": (dil_idx * NUM_KERNELS + kernel).astype(np.int32),
        }

    def equals(self, other: MiniRocketParameters) -> bool:
        """Exact equality of every field and array but ``extra`` (the provenance).

        Parameters
        ----------
        other : MiniRocketParameters
            The model to compare with (anything else gives False).

        Returns
        -------
        bool
        """
        if not isinstance(other, MiniRocketParameters):
            return False
        scalars = ("n_channels", "length", "num_features", "max_dilations_per_kernel", "seed",
                   "n_fit_examples")
        if any(getattr(self, s) != getattr(other, s) for s in scalars):
            return False
        arrays = ("dilations", "features_per_dilation", "channels_per_combination",
                  "channel_indices", "example_indices")
        if any(not np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays):
            return False
        if (self.biases is None) != (other.biases is None):
            return False
        return self.biases is None or np.array_equal(self.biases, other.biases)


def plan(
    n_examples: int,
    n_channels: int,
    length: int,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
) -> MiniRocketParameters:
    """Draw every parameter except the biases: what fit must read is known before any data.

    Parameters
    ----------
    n_examples : int
        Rows of the training data.
    n_channels, length : int
        Shape of one series.
    num_features : int, default 10000
        Requested feature count (raised to 84 if smaller).
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        See :func:`resolve_seed`.

    Returns
    -------
    MiniRocketParameters
        A plan (``biases`` None); its ``example_indices`` are the rows :func:`.fit_biases` reads.

    Raises
    ------
    InputError
        No examples, no channels, ``length < 9``, ``max_dilations_per_kernel < 1`` or a seed out of range.
    TypeError
        ``random_state`` of another type.
    """
    if n_examples < 1:
        raise InputError("fit needs at least one example, got an empty dataset")
    if n_channels < 1:
        raise InputError(f"need at least one channel, got {n_channels}")
    num_features = max(int(num_features), NUM_KERNELS)
    seed = resolve_seed(random_state)
    dilations, nfd = fit_dilations(length, num_features, max_dilations_per_kernel)
    n_comb = NUM_KERNELS * len(dilations)
    per_comb, chan_idx = draw_channel_combinations(n_channels, n_comb, seed)
    examples = draw_example_indices(n_examples, n_comb, seed)
    return MiniRocketParameters(
        n_channels=int(n_channels),
        length=int(length),
        num_features=num_features,
        max_dilations_per_kernel=int(max_dilations_per_kernel),
        seed=seed,
        n_fit_examples=int(n_examples),
        dilations=dilations,
        features_per_dilation=nfd,
        channels_per_combination=per_comb,
        channel_indices=chan_idx,
        example_indices=examples,
    )
