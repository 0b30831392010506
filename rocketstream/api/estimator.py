"""A scikit-learn style MiniRocket transformer over the exact core (sklearn itself is not imported)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import core
from ..config import resolve_device
from ..core import MiniRocketParameters, PreparedTransform
from ..errors import NotFittedError

#: Rows per device step when the output is gathered on the CPU (bounds device memory for the output).
DEVICE_CHUNK_ROWS = 4096


def require_fitted(params: MiniRocketParameters) -> MiniRocketParameters:
    """``params`` if it has biases, else :class:`NotFittedError`."""
    if not params.is_fitted:
        raise NotFittedError("the parameters have no biases yet; fit them first")
    return params


def _device_key(device: torch.device | str | None) -> torch.device:
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def transform_to_cpu(
    x: np.ndarray | torch.Tensor,
    params: MiniRocketParameters,
    prepared: PreparedTransform,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    chunk_rows: int = DEVICE_CHUNK_ROWS,
) -> torch.Tensor:
    """Transform validated float32 data on ``plan.device``; return the (n, F) features on the CPU.

    On an accelerator the rows go through in chunks of ``chunk_rows`` so that neither the input
    nor the full output ever sits on the device at once.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Validated float32 (n, channels, length).
    params : MiniRocketParameters
        A fitted model.
    prepared : PreparedTransform
        The prepared transform for ``params`` on the device to use.
    batch_size : int, optional
        Series per micro-batch.
    memory_budget : int, optional
        Bytes per micro-batch step.
    chunk_rows : int, default DEVICE_CHUNK_ROWS
        Rows moved to an accelerator at once (4096).

    Returns
    -------
    torch.Tensor
        float32 (n, n_features_out) on the CPU.
    """
    if prepared.device.type == "cpu":
        return core.transform(x, params, batch_size=batch_size, memory_budget=memory_budget,
                              prepared=prepared)
    n = x.shape[0]
    out = torch.empty(n, params.n_features_out, dtype=torch.float32)
    for s in range(0, n, chunk_rows):
        part = core.transform(x[s : s + chunk_rows], params, batch_size=batch_size,
                              memory_budget=memory_budget, prepared=prepared)
        out[s : s + len(part)] = part.cpu()
    return out


class MiniRocketTransformer:
    """Exact MiniRocket as a scikit-learn compatible transformer.

    Features equal aeon's ``MiniRocket(random_state=seed)``. ``transform`` returns a float32
    NumPy array of shape (n, 84 * (num_features // 84)) for NumPy/array-like input, and a float32
    CPU torch tensor for torch input.

    Parameters
    ----------
    num_features : int, default 10000
        Requested feature count (rounded down to a multiple of 84, at least 84).
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        None draws a fresh seed, recorded in the model. A RandomState is left as passed; ``fit`` draws
        the seed from it (advancing it), as scikit-learn estimators do.
    device : str or torch.device, optional
        Where fit and transform compute; None: CUDA where available, else the CPU.
    batch_size : int, optional
        Series per transform micro-batch (default: sized from ``memory_budget``).
    memory_budget : int, optional
        Bytes per micro-batch step (default: the core's).

    Attributes
    ----------
    parameters_ : MiniRocketParameters
        The fitted model.
    n_features_out_ : int
        Features per series.
    n_channels_, n_timepoints_ : int
        The shape of the series it was fitted on.
    seed_ : int
        The seed used.

    Examples
    --------
    >>> from rocketstream import MiniRocketTransformer
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(50, 3, 120)
    >>> mr = MiniRocketTransformer(num_features=1000, random_state=0).fit(X)
    >>> mr.transform(X).shape
    (50, 924)
    """

    def __init__(
        self,
        num_features: int = 10_000,
        max_dilations_per_kernel: int = 32,
        random_state: int | np.random.RandomState | None = None,
        device: torch.device | str | None = None,
        batch_size: int | None = None,
        memory_budget: int | None = None,
    ) -> None:
        self.num_features = num_features
        self.max_dilations_per_kernel = max_dilations_per_kernel
        self.random_state = random_state
        self.device = device
        self.batch_size = batch_size
        self.memory_budget = memory_budget

    # -- scikit-learn parameter protocol -------------------------------------------------------

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            name for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``clone`` expects them.

        Parameters
        ----------
        deep : bool, default True
            Ignored (there are no nested estimators).

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> MiniRocketTransformer:
        """Set constructor parameters; unknown names raise ``ValueError``.

        Parameters
        ----------
        **params
            ``name=value`` for constructor parameters.

        Returns
        -------
        MiniRocketTransformer
            ``self``.

        Raises
        ------
        ValueError
            An unknown parameter name.
        """
        valid = set(self._get_param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: "
                    f"{sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()}
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name)
            if value is default or (isinstance(value, (int, float, str)) and value == default):
                continue
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn >= 1.6 tags (imported lazily): a transformer of 3-D float input."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float32"]),
            input_tags=InputTags(two_d_array=False, three_d_array=True),
            non_deterministic=self.random_state is None,
            requires_fit=True,
        )

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "parameters_", None) is not None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_prepared", None)  # rebuilt on demand
        return state

    # -- fit / transform -----------------------------------------------------------------------

    def _fit(self, x: np.ndarray | torch.Tensor) -> None:
        params = core.fit(
            x,
            num_features=self.num_features,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            random_state=self.random_state,
            device=self.device,
            memory_budget=self.memory_budget,
        )
        self._set_fitted(params)

    def _set_fitted(self, params: MiniRocketParameters) -> None:
        self.parameters_ = params
        self.n_features_out_ = params.n_features_out
        self.n_channels_ = params.n_channels
        self.n_timepoints_ = params.length
        self.seed_ = params.seed
        self._prepared = None

    def fit(self, X: Any, y: Any = None) -> MiniRocketTransformer:
        """Fit on ``X`` (n_samples, n_channels, n_timepoints); ``y`` is ignored.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Training series, any real dtype, at least 9 time points.
        y : None
            Ignored.

        Returns
        -------
        MiniRocketTransformer
            ``self``, fitted.

        Raises
        ------
        InputError
            ``X`` is not 3-D, too short, not real-valued or holds NaN/Inf; or a bad parameter.
        """
        self._fit(core.as_float32_array(X))
        return self

    def _check_fitted(self) -> MiniRocketParameters:
        params = getattr(self, "parameters_", None)
        if params is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) or "
                f"{type(self).__name__}.load(path) before transform"
            )
        return params

    def _prepared_for(self, params: MiniRocketParameters) -> PreparedTransform:
        device = _device_key(self.device)
        prepared = getattr(self, "_prepared", None)
        if prepared is None or prepared.params is not params or prepared.device != device:
            prepared = PreparedTransform(params, device)
            self._prepared = prepared
        return prepared

    def _transform(self, x: np.ndarray | torch.Tensor, params: MiniRocketParameters) -> torch.Tensor:
        core.check_against_model(tuple(x.shape), params)
        return transform_to_cpu(x, params, self._prepared_for(params), self.batch_size, self.memory_budget)

    def transform(self, X: Any) -> np.ndarray | torch.Tensor:
        """Features (n, n_features_out_) float32: NumPy for NumPy input, a CPU tensor for torch input.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Series with the channel count and length the model was fitted on.

        Returns
        -------
        numpy.ndarray or torch.Tensor

        Raises
        ------
        NotFittedError
            Not fitted (or loaded) yet.
        InputError
            ``X`` does not fit the model, or holds NaN/Inf.
        """
        params = self._check_fitted()
        x = core.as_float32_array(X)
        feats = self._transform(x, params)
        return feats if torch.is_tensor(X) else feats.numpy()

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray | torch.Tensor:
        """``fit(X).transform(X)`` with one input validation.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Training series.
        y : None
            Ignored.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            float32 (n, n_features_out_).

        Raises
        ------
        InputError
            As :meth:`fit`.
        """
        x = core.as_float32_array(X)
        self._fit(x)
        feats = self._transform(x, self.parameters_)
        return feats if torch.is_tensor(X) else feats.numpy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``minirocket0 ... minirocket{F-1}`` (object array, as scikit-learn expects).

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        numpy.ndarray
            object (n_features_out_,).

        Raises
        ------
        NotFittedError
            Not fitted yet.
        """
        params = self._check_fitted()
        return np.asarray([f"minirocket{i}" for i in range(params.n_features_out)], dtype=object)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted parameters as JSON (no pickle); see :meth:`load`.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced if it is a regular file).

        Returns
        -------
        pathlib.Path
            ``path``, holding the fitted parameters as JSON.

        Raises
        ------
        NotFittedError
            Not fitted yet.
        ModelFileError
            ``path`` exists and is not a regular file.
        """
        return core.save(self._check_fitted(), path)

    @classmethod
    def from_parameters(
        cls,
        params: MiniRocketParameters,
        device: torch.device | str | None = None,
        batch_size: int | None = None,
        memory_budget: int | None = None,
    ) -> MiniRocketTransformer:
        """A fitted transformer around existing parameters; ``random_state`` becomes their seed.

        Parameters
        ----------
        params : MiniRocketParameters
            A fitted model (e.g. from ``rocketstream.fit`` on a store).
        device, batch_size, memory_budget
            As in the constructor.

        Returns
        -------
        MiniRocketTransformer
            Fitted, with ``parameters_`` set to ``params``.

        Raises
        ------
        NotFittedError
            ``params`` has no biases.
        """
        require_fitted(params)
        est = cls(
            num_features=params.num_features,
            max_dilations_per_kernel=params.max_dilations_per_kernel,
            random_state=params.seed,
            device=device,
            batch_size=batch_size,
            memory_budget=memory_budget,
        )
        est._set_fitted(params)
        return est

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str | None = None,
             batch_size: int | None = None, memory_budget: int | None = None) -> MiniRocketTransformer:
        """Read a model written by :meth:`save` (or ``rocketstream.core.save``).

        Parameters
        ----------
        path : str or os.PathLike
            The model file.
        device, batch_size, memory_budget
            As in the constructor.

        Returns
        -------
        MiniRocketTransformer
            Fitted.

        Raises
        ------
        ModelFileError
            The file is missing or not a valid model.
        """
        return cls.from_parameters(core.load(path), device, batch_size, memory_budget)
