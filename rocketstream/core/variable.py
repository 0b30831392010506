"""Unequal-length series: each series' features over its own length.

The rule is sktime's ``MiniRocketMultivariateVariable`` (the original variable-length MiniRocket):

* dilations come from a *reference length* (default: the longest series);
* the same seeded draws as fixed-length MiniRocket (channel combinations, one example per
  combination), so an equal-length dataset gets the same parameters;
* each bias is a quantile of the drawn example's convolution output over that example's own
  length (zero padding outside it);
* every feature is a PPV over the series' whole own-length output ("padding on" for all 9,996
  features: no empty valid region, so no NaN for short series).

Series shorter than 9 points are an error unless ``pad_short=True``, which appends zeros up to
9 points (sktime's ``pad_value_short_series=0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .biases import reference_quantiles
from .kernels import MIN_LENGTH, NUM_KERNELS
from .parameters import MiniRocketParameters, plan
from .tables import channel_slots
from .transform import PreparedTransform, transform_numpy
from .validation import InputError, check_dtype, check_finite

if TYPE_CHECKING:
    import torch

PAD_SHORT_FIX = ("fit with `rocketstream fit ... --pad-short` / pad_short=True, which records in the model "
                 "that short series get zeros appended up to 9 points, or drop those series")
VARIABLE_RULE = "own-length, all features padded (sktime MiniRocketMultivariateVariable)"


def as_series_list(x: Sequence[np.ndarray] | np.ndarray, lengths: Sequence[int] | np.ndarray | None = None,
                   pad_short: bool = False, what: str = "X") -> list[np.ndarray]:
    """Validate a list of (channels, length_i) series, or a padded (n, C, L) array plus lengths.

    Parameters
    ----------
    x : sequence of numpy.ndarray or numpy.ndarray
        Series (channels, length_i) or (length_i,), or a padded (n, C, L) array when ``lengths`` are given.
    lengths : sequence of int, optional
        Each series' own length in the padded ``x``.
    pad_short : bool, default False
        Append zeros to series shorter than 9 points instead of refusing them.
    what : str, default "X"
        The input's name in messages.

    Returns
    -------
    list of numpy.ndarray
        C-contiguous float32 (C, length_i) series.

    Raises
    ------
    InputError
        No series, mixed channel counts, a bad shape, dtype or length, NaN/Inf, or a series shorter than
        9 points without ``pad_short``.
    """
    if lengths is not None:
        arr = np.asarray(x)
        if arr.ndim != 3:
            raise InputError(f"{what} with lengths must be a padded 3-D (n, channels, time) array")
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (arr.shape[0],):
            raise InputError(f"{len(lengths)} lengths for {arr.shape[0]} series")
        if (lengths < 1).any() or (lengths > arr.shape[2]).any():
            raise InputError(f"lengths must be between 1 and the padded length {arr.shape[2]}")
        series = [arr[i, :, : lengths[i]] for i in range(len(arr))]
    else:
        series = [np.asarray(s) for s in x]
    if not series:
        raise InputError(f"{what} is empty: no series")
    out = []
    channels = None
    for i, s in enumerate(series):
        if s.ndim == 1:
            s = s[None, :]
        if s.ndim != 2:
            raise InputError(f"series {i} of {what} must be (channels, time), got shape {s.shape}")
        check_dtype(s.dtype, f"series {i} of {what}")
        channels = s.shape[0] if channels is None else channels
        if s.shape[0] != channels:
            raise InputError(f"series {i} has {s.shape[0]} channels, earlier series have {channels}")
        s = np.ascontiguousarray(s, dtype=np.float32)
        check_finite(s[None], f"series {i} of {what}")
        if s.shape[1] < MIN_LENGTH:
            if not pad_short:
                raise InputError(
                    f"series {i} of {what} has {s.shape[1]} time points; MiniRocket needs at least "
                    f"{MIN_LENGTH}: {PAD_SHORT_FIX}")
            s = np.pad(s, ((0, 0), (0, MIN_LENGTH - s.shape[1])))
        out.append(s)
    return out


def check_short(lengths: np.ndarray, pad_short: bool, fix: str = "") -> None:
    """Refuse series shorter than 9 points up front (before any output exists), unless ``pad_short``.

    Parameters
    ----------
    lengths : numpy.ndarray
        Every series' own length.
    pad_short : bool
        The model's rule: append zeros up to 9 points.
    fix : str, optional
        What to do instead (default: fit with ``pad_short``).

    Raises
    ------
    InputError
        Some series are shorter than 9 points and ``pad_short`` is false.
    """
    short = np.flatnonzero(np.asarray(lengths) < MIN_LENGTH)
    if short.size and not pad_short:
        first = int(short[0])
        raise InputError(f"{short.size} series are shorter than {MIN_LENGTH} time points (series {first} has "
                         f"{int(lengths[first])}); MiniRocket needs at least {MIN_LENGTH}: "
                         f"{fix or PAD_SHORT_FIX}")


def reference_length(series: list[np.ndarray], rule: str | int = "max") -> int:
    """The length dilations are fitted for: an int >= 9, or 'max', 'mean', 'median', 'min'.

    Parameters
    ----------
    series : list of numpy.ndarray
        Validated (C, length_i) series.
    rule : int or str, default "max"
        A length, or the statistic of the series lengths to use (never below 9).

    Returns
    -------
    int

    Raises
    ------
    InputError
        An int below 9 or an unknown rule.
    """
    if isinstance(rule, (int, np.integer)):
        if rule < MIN_LENGTH:
            raise InputError(f"reference_length must be >= {MIN_LENGTH}, got {rule}")
        return int(rule)
    funcs = {"max": np.max, "mean": np.mean, "median": np.median, "min": np.min}
    if rule not in funcs:
        raise InputError(f"reference_length must be an int or one of {sorted(funcs)}, got {rule!r}")
    return int(max(MIN_LENGTH, funcs[rule]([s.shape[1] for s in series])))


def fit_variable(
    x: Sequence[np.ndarray] | np.ndarray,
    lengths: Sequence[int] | np.ndarray | None = None,
    *,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    reference: str | int = "max",
    pad_short: bool = False,
) -> MiniRocketParameters:
    """Fit MiniRocket on series of unequal lengths (see the module docstring for the rule).

    Parameters
    ----------
    x : sequence of numpy.ndarray or numpy.ndarray
        Series (channels, length_i), or a padded (n, C, L) array with ``lengths``.
    lengths : sequence of int, optional
        Each series' own length in the padded ``x``.
    num_features : int, default 10000
        Requested feature count.
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one.
    reference : int or str, default "max"
        The reference length (see :func:`reference_length`).
    pad_short : bool, default False
        Append zeros to series shorter than 9 points (recorded in the model).

    Returns
    -------
    MiniRocketParameters
        A variable-length model (``params.variable_length`` is true).

    Raises
    ------
    InputError
        Bad series (see :func:`as_series_list`) or a bad ``reference``.
    """
    series = as_series_list(x, lengths, pad_short)
    ref = reference_length(series, reference)
    params = plan(len(series), series[0].shape[0], ref, num_features, max_dilations_per_kernel, random_state)
    return fit_variable_biases(params, lambda i: series[i], pad_short)


def fit_variable_biases(params: MiniRocketParameters, series_of: Callable[[int], np.ndarray],
                        pad_short: bool = False) -> MiniRocketParameters:
    """Fit the biases of a plan whose reference length is ``params.length``.

    ``series_of(i)`` returns fit series ``i`` as (channels, own length); only the drawn
    examples are requested, each once.

    Parameters
    ----------
    params : MiniRocketParameters
        A plan (see :func:`~rocketstream.core.plan`).
    series_of : callable
        ``series_of(i)`` gives training series ``i``.
    pad_short : bool, default False
        Append zeros to series shorter than 9 points.

    Returns
    -------
    MiniRocketParameters
        The fitted variable-length model.

    Raises
    ------
    InputError
        A drawn series is invalid (see :func:`as_series_list`).
    """
    cache: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = as_series_list([series_of(i)], pad_short=pad_short, what=f"fit series {i}")[0]
        return cache[i]

    import torch

    from .convolution import DilationTaps, combination_outputs

    slots = channel_slots(params)
    levels = params.quantiles
    offsets = params.feature_offsets()
    biases = np.empty(params.n_features_out, dtype=np.float32)
    for i, (d, nfd) in enumerate(params.per_dilation()):
        for k in range(NUM_KERNELS):
            row = torch.from_numpy(get(int(params.example_indices[i * NUM_KERNELS + k]))[None])
            taps = DilationTaps(row, d)
            out = combination_outputs(taps.alpha, taps.gamma, torch.tensor([k]), slots[i][k : k + 1],
                                      per_row=True, gamma_first=True)
            feat = offsets[i] + k * nfd + np.arange(nfd)
            biases[feat] = reference_quantiles(out.numpy(), levels[feat][None])[0]
    return params.with_biases(biases).with_extra(
        {"variable_length": VARIABLE_RULE, "reference_length": params.length, "pad_short": bool(pad_short)})


def is_variable(params: MiniRocketParameters) -> bool:
    """Whether ``params`` were fitted by :func:`fit_variable` (all-padded, own-length features).

    Parameters
    ----------
    params : MiniRocketParameters

    Returns
    -------
    bool
    """
    return params.variable_length


def transform_variable(
    x: Sequence[np.ndarray] | np.ndarray,
    params: MiniRocketParameters,
    lengths: Sequence[int] | np.ndarray | None = None,
    *,
    pad_short: bool | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Features of each series over its own length: (n, F) float32, no NaN for any length >= 9.

    Parameters
    ----------
    x : sequence of numpy.ndarray or numpy.ndarray
        Series (channels, length_i), or a padded (n, C, L) array with ``lengths``.
    params : MiniRocketParameters
        A model from :func:`fit_variable`.
    lengths : sequence of int, optional
        Each series' own length in the padded ``x``.
    pad_short : bool, optional
        Append zeros to series shorter than 9 points; default: as the model was fitted.
    device : str or torch.device, optional
        Where to compute; None: CUDA where available, else the CPU.

    Returns
    -------
    numpy.ndarray
        float32 (n, n_features_out).

    Raises
    ------
    InputError
        Bad series, or another channel count than the model's.
    """
    pad = params.extra.get("pad_short", False) if pad_short is None else pad_short
    series = as_series_list(x, lengths, pad)
    if series[0].shape[0] != params.n_channels:
        raise InputError(f"the series have {series[0].shape[0]} channels but the model was fitted on "
                         f"{params.n_channels}")
    out = np.empty((len(series), params.n_features_out), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(series):
        by_length.setdefault(s.shape[1], []).append(i)
    for length, idx in sorted(by_length.items()):
        prepared = PreparedTransform(params, device, length=length, all_padded=True)
        batch = np.stack([series[i] for i in idx])
        out[idx] = transform_numpy(batch, params, prepared=prepared)
    return out
