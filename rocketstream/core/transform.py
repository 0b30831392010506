"""Batch MiniRocket transform: (n, channels, length) -> (n, 84 * (num_features // 84)) float32.

Three engines compute the same bits: the native C kernel (:mod:`.native`) on the CPU when it was
built and ``ROCKETSTREAM_NATIVE`` is not ``0``; the fused Triton kernels (:mod:`.triton_engine`) on
CUDA when triton is installed and ``ROCKETSTREAM_TRITON`` is not ``0``; and the torch path (any
device: the fallback for both).

torch is imported only by the engines that compute with it: :func:`transform_numpy` on the native
engine (the CPU, with the device rule answered by :func:`~rocketstream.config.resolve_device_type`)
runs without it; :func:`transform` returns a tensor, so it always imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import cpu_threads, resolve_device, resolve_device_type
from ..errors import InputError
from . import native
from .budget import CPU_STEP_BUDGET, native_input_rows, transform_batch_shape
from .parameters import MiniRocketParameters
from .tables import channel_slots, kernel_windows
from .tensors import is_tensor

if TYPE_CHECKING:
    import torch

    from . import triton_engine


@dataclass
class _KernelGroup:
    kernels: torch.Tensor  # (K,)
    slots: torch.Tensor  # (K, M)
    biases: torch.Tensor  # (K, nfd)
    positions: torch.Tensor  # (K * nfd,) output columns
    start: int  # output window of the convolution
    stop: int


@dataclass
class _DilationPlan:
    dilation: int
    groups: list[_KernelGroup]


class PreparedTransform:
    """Parameters laid out on one device for the batch transform; build once, reuse per chunk.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.
    device : str or torch.device, optional
        Where :func:`transform` computes; None: CUDA where available, else the CPU.
    length : int, optional
        Overrides the series length (default: the fitted one).
    all_padded : bool, default False
        Take every PPV over the whole output, the variable-length rule (see :mod:`.variable`).

    Raises
    ------
    InputError
        The model is not fitted.
    """

    def __init__(self, params: MiniRocketParameters, device: torch.device | str | None = None, *,
                 length: int | None = None, all_padded: bool = False) -> None:
        if not params.is_fitted:
            raise InputError("the parameters have no biases yet; fit before transforming")
        self.params = params
        #: ``self.device.type``, known without importing torch for the CPU (see ``resolve_device_type``)
        self.device_type = resolve_device_type(device)
        self._device_arg = device
        self._device: torch.device | None = None
        self.length = int(length or params.length)
        self.all_padded = bool(all_padded)
        self._native: native.NativeKernel | None = None
        self._triton: triton_engine.TritonKernels | None = None
        self._dilations: list[_DilationPlan] | None = None

    @property
    def device(self) -> torch.device:
        """The torch device (resolved on first use: the native engine needs no torch)."""
        if self._device is None:
            self._device = resolve_device(self._device_arg)
        return self._device

    @property
    def dilations(self) -> list[_DilationPlan]:
        """The torch layout, per dilation (built on first use: the native path does not need it)."""
        if self._dilations is None:
            self._dilations = self._build_torch_layout()
        return self._dilations

    def _build_torch_layout(self) -> list[_DilationPlan]:
        import torch

        params = self.params
        slots = channel_slots(params)
        offsets = params.feature_offsets()
        biases = params.biases
        length = self.length
        dilations: list[_DilationPlan] = []
        for i, (d, nfd) in enumerate(params.per_dilation()):
            groups = []
            lo, hi = kernel_windows(i, d, length, self.all_padded)
            for start, stop in sorted(set(zip(lo.tolist(), hi.tolist(), strict=True))):
                ks = np.flatnonzero((lo == start) & (hi == stop))
                pos = offsets[i] + ks[:, None] * nfd + np.arange(nfd)[None, :]
                groups.append(
                    _KernelGroup(
                        kernels=torch.as_tensor(ks, device=self.device),
                        slots=slots[i][torch.as_tensor(ks)].to(self.device),
                        biases=torch.as_tensor(biases[pos], device=self.device),
                        positions=torch.as_tensor(pos.reshape(-1), device=self.device),
                        start=start,
                        stop=stop,
                    )
                )
            dilations.append(_DilationPlan(d, groups))
        return dilations

    @property
    def uses_native(self) -> bool:
        """Whether :func:`transform` runs this prepared transform on the native CPU kernel."""
        return self.device_type == "cpu" and native.enabled()

    def native_kernel(self) -> native.NativeKernel:
        """The parameters laid out for the native kernel (built on first use).

        Returns
        -------
        NativeKernel

        Raises
        ------
        RuntimeError
            The native library is unavailable (see :func:`.native.unavailable_reason`).
        """
        if self._native is None:
            self._native = native.NativeKernel(self.params, length=self.length, all_padded=self.all_padded)
        return self._native

    @property
    def uses_triton(self) -> bool:
        """Whether :func:`transform` runs this prepared transform on the fused Triton kernels (CUDA only)."""
        if self.device_type != "cuda":
            return False
        from . import triton_engine

        return triton_engine.enabled()

    def triton_kernels(self) -> triton_engine.TritonKernels:
        """The parameters laid out for the Triton kernels (built on first use).

        Returns
        -------
        TritonKernels
        """
        if self._triton is None:
            from . import triton_engine

            self._triton = triton_engine.TritonKernels(
                self.params, self.device, length=self.length, all_padded=self.all_padded
            )
        return self._triton

    def run(self, x: torch.Tensor, kernel_chunk: int = 42) -> torch.Tensor:
        """Transform one micro-batch ``x`` (B, C, L), already on its device, on the torch path.

        Parameters
        ----------
        x : torch.Tensor
            float32 (B, C, L) on :attr:`device`, ``L`` the prepared transform's length.
        kernel_chunk : int, default 42
            Kernels per step (bounds the (B, kernels, L) working set; never changes the result).

        Returns
        -------
        torch.Tensor
            float32 (B, n_features_out) on the prepared transform's device.
        """
        import torch

        from .convolution import DilationTaps, combination_outputs

        b = x.shape[0]
        out = torch.empty(b, self.params.n_features_out, dtype=torch.float32, device=self.device)
        for dp in self.dilations:
            taps = DilationTaps(x, dp.dilation)
            for g in dp.groups:
                alpha, gamma = taps.window(g.start, g.stop)
                n = g.stop - g.start
                nfd = g.biases.shape[1]
                for k0 in range(0, len(g.kernels), kernel_chunk):
                    sl = slice(k0, k0 + kernel_chunk)
                    c = combination_outputs(alpha, gamma, g.kernels[sl], g.slots[sl])
                    bias = g.biases[sl]
                    counts = torch.stack([(c > bias[:, j : j + 1]).sum(-1) for j in range(nfd)], -1)
                    del c
                    ppv = (counts.to(torch.float64) / n).to(torch.float32)
                    cols = g.positions[k0 * nfd : (k0 + len(bias)) * nfd]
                    out.index_copy_(1, cols, ppv.reshape(b, -1))
            del taps
        return out


def transform(
    x: np.ndarray | torch.Tensor,
    params: MiniRocketParameters,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    prepared: PreparedTransform | None = None,
) -> torch.Tensor:
    """Transform validated float32 data in micro-batches; returns a float32 tensor on ``device``.

    The input may live anywhere (NumPy, CPU or GPU tensor); only one micro-batch at a time is
    moved to ``device``. The engine (native C, Triton or torch) follows from the device; all give the
    same bits.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        float32 (n, channels, length), already validated (see :func:`~rocketstream.core.as_float32_array`).
    params : MiniRocketParameters
        A fitted model.
    device : str or torch.device, optional
        Where to compute; None: CUDA where available, else the CPU. Ignored when ``plan`` is given.
    batch_size : int, optional
        Series per micro-batch (default: sized from ``memory_budget``).
    memory_budget : int, optional
        Bytes per micro-batch step.
    prepared : PreparedTransform, optional
        Built earlier for ``params`` (saves the layout work when transforming many chunks).

    Returns
    -------
    torch.Tensor
        float32 (n, n_features_out) on the prepared transform's device.

    Raises
    ------
    InputError
        The model is not fitted; or, on the native and Triton engines, ``x`` has another channel count or
        length than the prepared transform transform.

    Examples
    --------
    >>> from rocketstream.core import fit, transform
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(50, 3, 120)
    >>> params = fit(X, num_features=1000, random_state=42)
    >>> transform(X, params, device="cpu").shape
    torch.Size([50, 924])
    """
    import torch

    prepared = prepared or PreparedTransform(params, device)
    n, c, length = x.shape
    if prepared.uses_native:
        return torch.from_numpy(_native_features(x, prepared, batch_size, memory_budget))
    if prepared.uses_triton:
        from . import triton_engine

        return triton_engine.transform(x, prepared.triton_kernels(), batch_size, memory_budget)
    if memory_budget is None and prepared.device.type == "cpu":
        memory_budget = CPU_STEP_BUDGET
    auto_batch, kernel_chunk = transform_batch_shape(c, length, memory_budget)
    batch = batch_size or auto_batch
    out = torch.empty(n, params.n_features_out, dtype=torch.float32, device=prepared.device)
    for s in range(0, n, batch):
        xb = x[s : s + batch]
        xb = torch.as_tensor(xb).to(device=prepared.device, dtype=torch.float32)
        out[s : s + len(xb)] = prepared.run(xb, kernel_chunk)
    return out


def transform_numpy(
    x: np.ndarray | torch.Tensor,
    params: MiniRocketParameters,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    prepared: PreparedTransform | None = None,
) -> np.ndarray:
    """:func:`transform`, the result as float32 NumPy on the host (the same bits).

    On the native engine (the CPU, with the C kernel built) this imports neither torch nor makes a
    tensor: the per-chunk tasks of the out-of-core transform and predict call it.

    Parameters
    ----------
    x, params, device, batch_size, memory_budget, prepared
        As for :func:`transform`.

    Returns
    -------
    numpy.ndarray
        float32 (n, n_features_out).

    Raises
    ------
    InputError
        As for :func:`transform`.
    """
    prepared = prepared or PreparedTransform(params, device)
    if prepared.uses_native:
        return _native_features(x, prepared, batch_size, memory_budget)
    out = transform(x, params, batch_size=batch_size, memory_budget=memory_budget, prepared=prepared)
    return out.cpu().numpy()


def _cpu_float32(x) -> np.ndarray:
    """``x`` as a C-contiguous float32 NumPy array on the CPU (no copy when it already is one)."""
    if is_tensor(x):  # then torch is loaded already
        import torch

        return x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _is_cpu_float32(x) -> bool:
    if is_tensor(x):
        import torch

        return x.device.type == "cpu" and x.dtype == torch.float32 and x.is_contiguous()
    return isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous


def _native_features(
    x, prepared: PreparedTransform, batch_size: int | None, memory_budget: int | None
) -> np.ndarray:
    """The native CPU kernel over the whole input (zero-copy when it is contiguous float32),
    otherwise over converted slabs of rows; :func:`~rocketstream.config.cpu_threads` threads."""
    params = prepared.params
    n, c, length = x.shape
    if (c, length) != (params.n_channels, prepared.length):
        raise InputError(
            f"input has {c} channels of length {length}, the model expects "
            f"{params.n_channels} of length {prepared.length}"
        )
    kernel = prepared.native_kernel()
    out = np.empty((n, params.n_features_out), dtype=np.float32)
    threads = cpu_threads()
    if _is_cpu_float32(x):
        kernel.transform_into(_cpu_float32(x), out, threads)
        return out
    step = batch_size or native_input_rows(c, length, memory_budget)
    for s in range(0, n, step):
        xb = _cpu_float32(x[s : s + step])
        kernel.transform_into(xb, out[s : s + len(xb)], threads)
    return out
