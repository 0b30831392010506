"""tsai-compatible names (``tsai.models.MINIROCKET_Pytorch``, tsai 1.0.1) with exact MiniRocket features.

The signatures follow tsai; the features are the reference ones (equal to aeon's
``MiniRocket(random_state=seed)``), computed by :mod:`rocketstream.core` on the input's device in
bounded micro-batches. Differences from tsai, on purpose:

* ``MiniRocketFeatures.fit(X)`` uses every row by default (only the 84 * n_dilations rows the
  recipe draws are read); with ``chunksize`` it first draws that many rows without replacement
  with a private ``RandomState(seed)``, so the same seed always gives the same model.
* Calling the module before ``fit`` raises :class:`NotFittedError` (tsai silently fits on the batch).
* No global NumPy RNG state is touched; no TF32; inputs are validated (shape, NaN/Inf).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import core
from ..core import NUM_KERNELS, InputError, MiniRocketParameters, PreparedTransform, fit_dilations
from ..core.validation import check_shape
from ..errors import PreflightError
from .estimator import NotFittedError, _device_key, require_fitted

__all__ = ["MRF", "MiniRocket", "MiniRocketFeatures", "MiniRocketHead", "get_minirocket_features"]

#: buffer name -> (torch dtype, NumPy dtype) of the parameter arrays kept as buffers
_ARRAY_BUFFERS = {
    "dilations": (torch.int32, np.int32),
    "features_per_dilation": (torch.int32, np.int32),
    "channels_per_combination": (torch.int32, np.int32),
    "channel_indices": (torch.int32, np.int32),
    "example_indices": (torch.int64, np.int64),
    "biases": (torch.float32, np.float32),
}


class MiniRocketFeatures(nn.Module):
    """The MiniRocket transform as a frozen ``nn.Module``: (B, c_in, seq_len) -> (B, num_features).

    ``num_features`` is the actual output count, ``84 * (num_features // 84)``. The fitted
    parameters live in buffers, so ``.to(device)``, ``state_dict()`` and ``load_state_dict()``
    work; the module has no trainable parameters. Buffers keep their dtype under ``.double()`` or
    ``.half()`` so the features stay exact.

    Parameters
    ----------
    c_in : int
        Channels of the series.
    seq_len : int
        Series length (>= 9).
    num_features : int, default 10000
        Requested feature count.
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one at :meth:`fit`.

    Attributes
    ----------
    num_features : int
        The actual output count.
    batch_size, memory_budget : int or None
        Micro-batch settings for the transform (None: sized by the core); set them on the instance.

    Raises
    ------
    InputError
        ``c_in < 1``, ``seq_len < 9`` or ``max_dilations_per_kernel < 1``.

    Examples
    --------
    >>> from rocketstream.api.tsai import MiniRocketFeatures
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(64, 3, 120)
    >>> mrf = MiniRocketFeatures(c_in=3, seq_len=120, num_features=1000, random_state=0).fit(X)
    >>> mrf(X[:8]).shape
    torch.Size([8, 924])
    """

    kernel_size, num_kernels = 9, NUM_KERNELS
    #: Optional micro-batch settings for the transform (``None``: sized by the core).
    batch_size: int | None = None
    memory_budget: int | None = None

    def __init__(
        self,
        c_in: int,
        seq_len: int,
        num_features: int = 10_000,
        max_dilations_per_kernel: int = 32,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__()
        if int(c_in) < 1:
            raise InputError(f"c_in must be >= 1, got {c_in}")
        requested = max(int(num_features), NUM_KERNELS)
        dilations, nfd = fit_dilations(int(seq_len), requested, int(max_dilations_per_kernel))
        self.c_in, self.seq_len = int(c_in), int(seq_len)
        self.num_features = NUM_KERNELS * int(nfd.sum())
        self.requested_num_features = requested
        self.max_dilations_per_kernel = int(max_dilations_per_kernel)
        self.random_state = random_state
        self.num_dilations = len(dilations)
        n_comb = NUM_KERNELS * len(dilations)
        self.register_buffer("dilations", torch.as_tensor(dilations, dtype=torch.int32))
        self.register_buffer("features_per_dilation", torch.as_tensor(nfd, dtype=torch.int32))
        self.register_buffer("channels_per_combination", torch.zeros(n_comb, dtype=torch.int32))
        self.register_buffer("channel_indices", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("example_indices", torch.zeros(n_comb, dtype=torch.int64))
        self.register_buffer("biases", torch.zeros(self.num_features, dtype=torch.float32))
        self.register_buffer("seed", torch.zeros((), dtype=torch.int64))
        self.register_buffer("n_fit_examples", torch.zeros((), dtype=torch.int64))
        self.register_buffer("prefit", torch.zeros(1, dtype=torch.bool))
        self._mr_params: MiniRocketParameters | None = None
        self._prepared: dict[torch.device, PreparedTransform] = {}

    # -- fitted state ----------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        """Whether the module is fitted (or holds a fitted ``state_dict``)."""
        return bool(self.prefit.item())

    @property
    def num_features_per_dilation(self) -> np.ndarray:
        """int32 features per dilation, as NumPy."""
        return self.features_per_dilation.cpu().numpy()

    @property
    def minirocket_parameters(self) -> MiniRocketParameters:
        """The fitted :class:`~rocketstream.core.MiniRocketParameters` (e.g. for ``core.save``).

        Raises :class:`NotFittedError` before :meth:`fit`.
        """
        return self._fitted_params()

    def __getattr__(self, name: str) -> Any:
        if name == "minirocket_parameters":
            # a property raising AttributeError falls back here; re-raise the clear message
            return self._fitted_params()
        return super().__getattr__(name)

    def _fitted_params(self) -> MiniRocketParameters:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call .fit(X) on training data "
                "(n, c_in, seq_len) or load a fitted state_dict first"
            )
        if self._mr_params is None:
            self._mr_params = self._params_from_buffers()
        return self._mr_params

    def _params_from_buffers(self) -> MiniRocketParameters:
        arrays = {name: np.ascontiguousarray(getattr(self, name).detach().cpu().numpy(), dtype=np_dtype)
                  for name, (_, np_dtype) in _ARRAY_BUFFERS.items()}
        params = MiniRocketParameters(
            n_channels=self.c_in,
            length=self.seq_len,
            num_features=self.requested_num_features,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            seed=int(self.seed.item()),
            n_fit_examples=int(self.n_fit_examples.item()),
            **arrays,
        )
        # round trip through the model-file schema: the same consistency checks as loading a file
        return core.from_dict(core.to_dict(params))

    def _set_fitted(self, params: MiniRocketParameters) -> None:
        if (params.n_channels, params.length) != (self.c_in, self.seq_len):
            raise InputError(
                f"parameters were fitted on {params.n_channels} channel(s) x length {params.length}, "
                f"but this module expects c_in={self.c_in}, seq_len={self.seq_len}"
            )
        if params.n_features_out != self.num_features:
            raise InputError(
                f"parameters give {params.n_features_out} features, this module {self.num_features}"
            )
        device = self.prefit.device
        for name, (dtype, _) in _ARRAY_BUFFERS.items():
            setattr(self, name, torch.as_tensor(getattr(params, name), dtype=dtype, device=device).clone())
        self.seed = torch.tensor(params.seed, dtype=torch.int64, device=device)
        self.n_fit_examples = torch.tensor(params.n_fit_examples, dtype=torch.int64, device=device)
        self.prefit = torch.ones(1, dtype=torch.bool, device=device)
        self._mr_params = params
        self._prepared = {}

    @classmethod
    def from_parameters(cls, params: MiniRocketParameters) -> MiniRocketFeatures:
        """A fitted module around parameters from ``rocketstream.core.fit`` or ``core.load``.

        Parameters
        ----------
        params : MiniRocketParameters
            A fitted model.

        Returns
        -------
        MiniRocketFeatures
            The fitted module, on the CPU.

        Raises
        ------
        NotFittedError
            ``params`` has no biases.
        """
        require_fitted(params)
        module = cls(params.n_channels, params.length, params.num_features,
                     params.max_dilations_per_kernel, random_state=params.seed)
        module._set_fitted(params)
        return module

    # -- fit / forward ---------------------------------------------------------------------------

    def fit(self, X: Any, chunksize: int | None = None) -> MiniRocketFeatures:
        """Fit on ``X`` (n, c_in, seq_len), NumPy or tensor; returns ``self``.

        ``chunksize=None`` fits on all rows (exactly aeon's model for the same seed). An integer
        first draws ``min(n, chunksize)`` rows without replacement with ``RandomState(seed)``
        (sorted), then fits on those; only the drawn rows are converted and read.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Training series (n, c_in, seq_len).
        chunksize : int, optional
            Fit on this many rows drawn at random.

        Returns
        -------
        MiniRocketFeatures
            ``self``, fitted on the device of its buffers.

        Raises
        ------
        InputError
            ``X`` has another shape than the module's, is not real-valued or holds NaN/Inf; or a
            ``chunksize`` below 1.
        """
        if not (torch.is_tensor(X) or isinstance(X, np.ndarray)):
            X = np.asarray(X)
        n, c, length = check_shape(tuple(X.shape))
        if (c, length) != (self.c_in, self.seq_len):
            raise InputError(
                f"X has {c} channel(s) x length {length}, but this module was built for "
                f"c_in={self.c_in}, seq_len={self.seq_len}; build MiniRocketFeatures(c_in, seq_len) to match"
            )
        seed = core.resolve_seed(self.random_state)
        if chunksize is not None:
            chunksize = int(chunksize)
            if chunksize < 1:
                raise InputError(f"chunksize must be a positive number of rows, got {chunksize}")
            if chunksize < n:
                idx = np.sort(np.random.RandomState(seed).choice(n, chunksize, replace=False))
                X = X[torch.as_tensor(idx)] if torch.is_tensor(X) else X[idx]
        params = core.fit(
            core.as_float32_array(X),
            num_features=self.requested_num_features,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            random_state=seed,
            device=self.prefit.device,
            memory_budget=self.memory_budget,
        )
        self._set_fitted(params)
        return self

    def _prepared_for(self, device: torch.device) -> PreparedTransform:
        device = _device_key(device)
        prepared = self._prepared.get(device)
        params = self._fitted_params()
        if prepared is None or prepared.params is not params:
            prepared = PreparedTransform(params, device)
            self._prepared[device] = prepared
        return prepared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, num_features) float32 on ``x``'s device (NumPy input: on the CPU).

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray
            (B, c_in, seq_len) series.

        Returns
        -------
        torch.Tensor

        Raises
        ------
        NotFittedError
            Not fitted yet.
        InputError
            ``x`` does not fit the module, or holds NaN/Inf.
        """
        params = self._fitted_params()
        x = core.as_float32_array(x, "x")
        core.check_against_model(tuple(x.shape), params, "x")
        device = x.device if torch.is_tensor(x) else torch.device("cpu")
        with torch.no_grad():
            return core.transform(x, params, batch_size=self.batch_size, memory_budget=self.memory_budget,
                                  prepared=self._prepared_for(device))

    # -- torch plumbing --------------------------------------------------------------------------

    def _apply(self, fn: Any, recurse: bool = True) -> MiniRocketFeatures:
        # Move buffers between devices, but never change their dtype (exactness of the biases).
        buffers = dict(self._buffers)
        self._buffers.clear()
        try:
            super()._apply(fn, recurse)
        finally:
            for name, buf in buffers.items():
                if buf is not None:
                    moved = fn(buf)
                    buf = moved if moved.dtype == buf.dtype else buf.to(moved.device)
                self._buffers[name] = buf
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        key = prefix + "channel_indices"
        if key in state_dict and state_dict[key].shape != self.channel_indices.shape:
            # the number of channel indices depends on the seed: size the buffer to the incoming one
            self.channel_indices = torch.zeros(state_dict[key].shape, dtype=torch.int32,
                                               device=self.channel_indices.device)
        n_errors = len(error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._mr_params = None
        self._prepared = {}
        if len(error_msgs) == n_errors and self.is_fitted:
            try:
                self._mr_params = self._params_from_buffers()
            except ValueError as exc:
                error_msgs.append(f"inconsistent MiniRocket parameters in state_dict: {exc}")

    def extra_repr(self) -> str:
        """The settings shown by ``repr(module)``."""
        return (f"c_in={self.c_in}, seq_len={self.seq_len}, num_features={self.num_features}, "
                f"max_dilations_per_kernel={self.max_dilations_per_kernel}, fitted={self.is_fitted}")


MRF = MiniRocketFeatures


def get_minirocket_features(
    o: np.ndarray | torch.Tensor,
    model: nn.Module,
    chunksize: int = 1024,
    use_cuda: bool | None = None,
    to_np: bool = True,
) -> np.ndarray | torch.Tensor:
    """Features of ``o`` (n, c_in, seq_len) as (n, num_features, 1), ``chunksize`` rows at a time.

    ``use_cuda=None`` uses CUDA when available. The model is moved to that device (as tsai does);
    each chunk is moved there in turn and its features come back to the CPU, so neither the whole
    input nor the whole output is ever on the device.

    Parameters
    ----------
    o : numpy.ndarray or torch.Tensor
        (n, c_in, seq_len) series.
    model : torch.nn.Module
        A fitted :class:`MiniRocketFeatures` (or any module mapping a batch to features).
    chunksize : int, default 1024
        Rows per step.
    use_cuda : bool, optional
        Compute on CUDA; None: when available.
    to_np : bool, default True
        Return NumPy, else a CPU tensor.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 (n, num_features, 1) on the CPU.

    Raises
    ------
    PreflightError
        ``use_cuda=True`` without CUDA.
    InputError
        A bad ``chunksize``, or ``o`` not (n, c_in, seq_len) real values without NaN/Inf.
    NotFittedError
        The model is not fitted.

    Examples
    --------
    >>> from rocketstream.api.tsai import MiniRocketFeatures, get_minirocket_features
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(64, 3, 120)
    >>> mrf = MiniRocketFeatures(c_in=3, seq_len=120, num_features=1000, random_state=0).fit(X)
    >>> get_minirocket_features(X, mrf, chunksize=32).shape
    (64, 924, 1)
    """
    use = torch.cuda.is_available() if use_cuda is None else bool(use_cuda)
    if use and not torch.cuda.is_available():
        raise PreflightError("use_cuda=True but CUDA is not available; pass use_cuda=False or None")
    device = torch.device("cuda", torch.cuda.current_device()) if use else torch.device("cpu")
    chunksize = int(chunksize)
    if chunksize < 1:
        raise InputError(f"chunksize must be a positive number of rows, got {chunksize}")
    if not (torch.is_tensor(o) or isinstance(o, np.ndarray)):
        o = np.asarray(o)
    n = check_shape(tuple(o.shape), "o")[0]
    model = model.to(device)
    out: torch.Tensor | None = None
    with torch.no_grad():
        for s in range(0, n, chunksize):
            chunk = torch.as_tensor(core.as_float32_array(o[s : s + chunksize], "o")).to(device)
            feats = model(chunk)
            if out is None:
                out = torch.empty((n, *feats.shape[1:]), dtype=feats.dtype)
            out[s : s + len(feats)] = feats.cpu()
    if out is None:  # no rows
        width = getattr(model, "num_features", 0)
        out = torch.empty((0, width), dtype=torch.float32)
    out = out.unsqueeze(-1)
    return out.numpy() if to_np else out


def _linear_head(c_in: int, c_out: int, bn: bool, fc_dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    if bn:
        layers.append(nn.BatchNorm1d(c_in))
    if fc_dropout:
        layers.append(nn.Dropout(fc_dropout))
    linear = nn.Linear(c_in, c_out)
    nn.init.zeros_(linear.weight)  # zero init, as tsai and the original softmax recipe do
    nn.init.zeros_(linear.bias)
    layers.append(linear)
    return nn.Sequential(*layers)


class MiniRocketHead(nn.Sequential):
    """Linear head over precomputed features: Flatten, optional BatchNorm1d and Dropout, Linear.

    Accepts (B, c_in, 1) (as returned by :func:`get_minirocket_features`) or (B, c_in). The
    module layout (``backbone`` empty, ``head``) matches tsai's, so state_dict keys do too.

    Parameters
    ----------
    c_in : int
        Features per sample.
    c_out : int
        Outputs (classes).
    seq_len : int, default 1
        Unused (tsai's signature).
    bn : bool, default True
        Add a BatchNorm1d over the features.
    fc_dropout : float, default 0.0
        Dropout rate before the linear layer (0: none).

    Examples
    --------
    >>> import torch
    >>> from rocketstream.api.tsai import MiniRocketHead
    >>> head = MiniRocketHead(c_in=924, c_out=4)
    >>> head(torch.zeros(8, 924, 1)).shape
    torch.Size([8, 4])
    """

    def __init__(
        self, c_in: int, c_out: int, seq_len: int = 1, bn: bool = True, fc_dropout: float = 0.0
    ) -> None:
        super().__init__(OrderedDict([("backbone", nn.Sequential()),
                                      ("head", _linear_head(c_in, c_out, bn, fc_dropout))]))


class MiniRocket(nn.Sequential):
    """Online MiniRocket classifier: a frozen :class:`MiniRocketFeatures` backbone and a linear head.

    Call :meth:`fit` once (fits the backbone only), then train the head with any torch loop;
    ``forward`` returns logits. The backbone has no trainable parameters.

    Parameters
    ----------
    c_in : int
        Channels of the series.
    c_out : int
        Outputs (classes).
    seq_len : int
        Series length.
    num_features, max_dilations_per_kernel, random_state
        As in :class:`MiniRocketFeatures`.
    bn, fc_dropout
        As in :class:`MiniRocketHead`.

    Examples
    --------
    >>> import torch
    >>> from rocketstream.api.tsai import MiniRocket
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(64, 3, 120)
    >>> model = MiniRocket(c_in=3, c_out=4, seq_len=120, num_features=1000, random_state=0).fit(X)
    >>> model(torch.as_tensor(X[:8])).shape
    torch.Size([8, 4])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        seq_len: int,
        num_features: int = 10_000,
        max_dilations_per_kernel: int = 32,
        random_state: int | np.random.RandomState | None = None,
        bn: bool = True,
        fc_dropout: float = 0,
    ) -> None:
        backbone = MiniRocketFeatures(c_in, seq_len, num_features=num_features,
                                      max_dilations_per_kernel=max_dilations_per_kernel,
                                      random_state=random_state)
        nf = backbone.num_features
        super().__init__(OrderedDict([("backbone", backbone),
                                      ("head", _linear_head(nf, c_out, bn, fc_dropout))]))
        self.head_nf = nf

    def fit(self, X: Any, chunksize: int | None = None) -> MiniRocket:
        """Fit the backbone on ``X`` (n, c_in, seq_len); see :meth:`MiniRocketFeatures.fit`.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Training series.
        chunksize : int, optional
            Fit on this many rows drawn at random.

        Returns
        -------
        MiniRocket
            ``self``.

        Raises
        ------
        InputError
            As :meth:`MiniRocketFeatures.fit`.
        """
        self.backbone.fit(X, chunksize=chunksize)
        return self
