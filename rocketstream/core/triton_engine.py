"""The CUDA engine: one fused Triton kernel per dilation computes convolution, comparison and count.

Nothing of size (batch, kernels, length) is ever stored: each program keeps one kernel's output
tile in registers, compares it with the kernel's biases and counts per lane (small whole numbers,
exact in float32), then adds its integer totals. Per micro-batch the GPU holds the input rows,
their ``C_alpha`` and zero-padded ``G = 3x`` (both dropped, and recomputed inside the kernel, when
a single series would not fit the budget) and (batch, features) counts.
The operation order is that of :mod:`.convolution`, so the features are the same bits as the CPU
engines'. ``ROCKETSTREAM_TRITON=0`` falls back to the torch path. The kernels also run on CPU
tensors under ``TRITON_INTERPRET=1`` (slow; used by the tests on machines without a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import ENV_TRITON, GPU_FREE_FRACTION, GPU_MAX_BUDGET, MEMORY_BUDGET, env_flag
from ..errors import InputError
from .kernels import KERNEL_INDICES, NUM_KERNELS
from .parameters import MiniRocketParameters
from .tables import channel_slots, kernel_windows

ENV_VAR = ENV_TRITON
#: Working-set budget on the GPU when none is given: this fraction of the free memory, at most
#: MAX_DEFAULT_BUDGET (enough to fill an H100; leaves room for other threads sharing the device).
FREE_MEMORY_FRACTION = GPU_FREE_FRACTION
MAX_DEFAULT_BUDGET = GPU_MAX_BUDGET
#: At most this many series per launch (the grid's second dimension).
MAX_BATCH = 65535
_FLOAT = 4
#: Time points per program of the C_alpha kernel.
ALPHA_BLOCK = 512
#: Per-lane counts are float32 in the kernel: a program may visit fewer tiles than this.
MAX_LANE_TILES = 2**24


#: Oldest triton the kernels are written for (3.x: ``do_not_specialize`` by name, int64 program ids).
MIN_TRITON = (3, 0)


def enabled() -> bool:
    """Whether triton >= 3.0 is importable and not disabled by ``ROCKETSTREAM_TRITON=0``.

    Returns
    -------
    bool
    """
    if not env_flag(ENV_TRITON):
        return False
    try:
        import triton
    except ImportError:
        return False
    return _version_tuple(triton.__version__) >= MIN_TRITON


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@dataclass
class _Dilation:
    dilation: int
    nfd: int
    nfd_pad: int  # nfd rounded up to a power of two: the kernel's bias lanes
    offset: int  # first output column of this dilation
    chans: torch.Tensor  # (84, maxm) int32, each kernel's channels in the drawn order
    nch: torch.Tensor  # (84,) int32
    biases: torch.Tensor  # (84 * nfd,) float32
    lo: torch.Tensor  # (84,) int32, each kernel's output window [lo, hi)
    hi: torch.Tensor


class TritonKernels:
    """Parameters laid out on one device for the fused kernels (build once, reuse per batch).

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.
    device : torch.device
        The CUDA device (a CPU device under ``TRITON_INTERPRET=1``).
    length : int
        Series length.
    all_padded : bool
        Take every PPV over the whole output, the variable-length rule.
    """

    def __init__(self, params: MiniRocketParameters, device: torch.device, *, length: int,
                 all_padded: bool) -> None:
        self.params = params
        self.device = device
        self.length = length
        self.taps = torch.as_tensor(KERNEL_INDICES, dtype=torch.int32, device=device).reshape(-1)
        slots = [s.numpy() for s in channel_slots(params)]  # padded with C past each kernel's channels
        maxm = max(s.shape[1] for s in slots)
        offsets = params.feature_offsets()
        denominators = np.empty(params.n_features_out, dtype=np.float64)
        self.dilations: list[_Dilation] = []
        for i, (d, nfd) in enumerate(params.per_dilation()):
            real = slots[i] != params.n_channels
            nch = real.sum(axis=1).astype(np.int32)
            chans = np.zeros((NUM_KERNELS, maxm), dtype=np.int32)
            chans[:, : slots[i].shape[1]] = np.where(real, slots[i], 0)
            lo, hi = kernel_windows(i, d, length, all_padded)
            cols = slice(offsets[i], offsets[i] + NUM_KERNELS * nfd)
            denominators[cols] = np.repeat(hi - lo, nfd)

            def dev(a: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), device=device)

            self.dilations.append(_Dilation(
                int(d), int(nfd), triton_next_pow2(nfd), int(offsets[i]), dev(chans), dev(nch),
                dev(params.biases[cols].astype(np.float32)), dev(lo), dev(hi),
            ))
        self.maxm = maxm
        self.pad = 4 * int(max(dl.dilation for dl in self.dilations))
        self.denominators = torch.as_tensor(denominators, device=device)

    def counts(self, x: torch.Tensor, *, inline: bool = False, block_t: int | None = None,
               num_warps: int = 4, splits: int | None = None, k_group: int = 1) -> torch.Tensor:
        """Integer PPV counts (B, F) of one micro-batch ``x`` (B, C, L) on the prepared transform's device.

        ``inline`` computes ``C_alpha`` and ``G`` inside the kernel (no buffers: the low-memory
        mode); the other options tune the launch and never change the result: ``block_t`` caps
        the time points per tile (see :func:`default_block_t`), ``splits`` the time splits,
        ``k_group`` (a divisor of 84) the kernels one program runs one after the other.

        Parameters
        ----------
        x : torch.Tensor
            Contiguous float32 (B, C, L) on the prepared transform's device.
        inline : bool, default False
            Recompute the taps in the kernel.
        block_t : int, optional
            Cap on the time points per tile.
        num_warps : int, default 4
            Warps per program (CUDA).
        splits : int, optional
            Time splits per series (default: :func:`time_splits`).
        k_group : int, default 1
            Kernels per program, a divisor of 84.

        Returns
        -------
        torch.Tensor
            int32 (B, n_features_out) counts.

        Raises
        ------
        ValueError
            ``k_group`` does not divide 84.
        """
        if NUM_KERNELS % k_group:
            raise ValueError(f"k_group must divide {NUM_KERNELS}, got {k_group}")
        from . import _triton_kernels as tk

        b, c, length = x.shape
        n_features = self.params.n_features_out
        counts = torch.zeros(b, n_features, dtype=torch.int32, device=self.device)
        pad = self.pad
        if inline:
            alpha = g = x  # unused
        else:
            alpha = torch.empty_like(x)
            g = x.new_zeros(b, c, length + 2 * pad)
            torch.mul(x, 3, out=g[..., pad : pad + length])
        block_a = min(ALPHA_BLOCK, triton_next_pow2(length))
        n_tiles = _ceil_div(length, block_a)
        launch = {} if self.device.type == "cpu" else {"num_warps": num_warps}
        for dl in self.dilations:
            bt = default_block_t(dl.nfd_pad, length, inline, block_t)
            n_split = splits or time_splits(b, length, bt, self.device)
            # a program's per-lane float32 counts stay exact below 2**24 tiles
            n_split = max(n_split, _ceil_div(length, bt * (MAX_LANE_TILES - 1)))
            split_len = _ceil_div(_ceil_div(length, n_split), bt) * bt
            n_split = _ceil_div(length, split_len)
            if not inline:
                tk.alpha_kernel[(n_tiles * b * c,)](x, alpha, length, dl.dilation, n_tiles, BLOCK=block_a)
            tk.counts_kernel[(NUM_KERNELS // k_group * n_split, b)](
                x, alpha, g, counts, self.taps, dl.chans, dl.nch, dl.biases, dl.lo, dl.hi,
                c, length, pad, dl.dilation, split_len, n_features, dl.offset, dl.nfd,
                MAXM=self.maxm, NFD_PAD=dl.nfd_pad, BLOCK_T=bt, INLINE=inline, K_GROUP=k_group, **launch,
            )
        return counts

    def ppv(self, counts: torch.Tensor) -> torch.Tensor:
        """PPV features from counts: ``float32(count / n)`` with the division in float64.

        Parameters
        ----------
        counts : torch.Tensor
            (B, F) counts from :meth:`counts`.

        Returns
        -------
        torch.Tensor
            float32 (B, F).
        """
        return (counts.to(torch.float64) / self.denominators).to(torch.float32)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def triton_next_pow2(n: int) -> int:
    """The smallest power of two >= ``n`` (>= 1).

    Parameters
    ----------
    n : int

    Returns
    -------
    int
    """
    return 1 << max(0, int(n) - 1).bit_length()


def default_block_t(nfd_pad: int, length: int, inline: bool = False, cap: int | None = None) -> int:
    """Time points per tile: ``cap`` (512; 128 when the taps are recomputed ``inline``), fewer
    when each point meets many biases, so that a tile holds about ``4 * cap`` per-lane counters
    (16 a thread at 4 warps). ptxas reports no spills at these sizes for sm_90.

    Parameters
    ----------
    nfd_pad : int
        Bias lanes per kernel (features per kernel rounded up to a power of two).
    length : int
        Series length.
    inline : bool, default False
        Whether the taps are recomputed in the kernel.
    cap : int, optional
        Upper bound (default 512, or 128 ``inline``).

    Returns
    -------
    int
        At least 32.
    """
    cap = cap or (128 if inline else 512)
    return int(max(32, min(cap, 4 * cap // nfd_pad, triton_next_pow2(length))))


def time_splits(batch: int, length: int, block_t: int, device: torch.device) -> int:
    """Split each series' time axis so that small batches of long series still fill the GPU.

    Parameters
    ----------
    batch : int
        Series in the micro-batch.
    length : int
        Series length.
    block_t : int
        Time points per tile.
    device : torch.device
        The prepared transform's device (not CUDA: no split).

    Returns
    -------
    int
        Splits per series, at least 1.
    """
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    wanted = _ceil_div(8 * sms, NUM_KERNELS * batch)
    return int(max(1, min(wanted, _ceil_div(length, 4 * block_t))))


def batch_rows(n_channels: int, length: int, pad: int, n_features: int, budget: int) -> tuple[int, bool]:
    """``(series per micro-batch, inline)`` so one step's GPU working set fits ``budget``.

    A step holds the input rows, their ``C_alpha``, ``G`` padded by ``pad`` on each side, and per
    series int32 counts, their float64 quotient and the float32 features (16 bytes a feature).
    When not even one series fits, the kernel recomputes ``C_alpha`` and ``G`` from the input
    instead (``inline``): then only the input is held. The C_alpha launch's grid bounds the rows too.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    pad : int
        Zero padding of ``G`` on each side (``4 * max dilation``).
    n_features : int
        Features per series.
    budget : int
        Bytes per step.

    Returns
    -------
    rows : int
        Series per micro-batch, at least 1.
    inline : bool
        Whether the taps must be recomputed in the kernel.
    """
    per_series = n_channels * (3 * length + 2 * pad) * _FLOAT + 16 * n_features
    grid_rows = (2**31 - 1) // (_ceil_div(length, ALPHA_BLOCK) * n_channels)
    rows = min(budget // per_series, MAX_BATCH, grid_rows)
    if budget // per_series >= 1:
        return int(max(rows, 1)), False
    return 1, True


def gpu_budget(device: torch.device, memory_budget: int | None) -> int:
    """The working-set budget: ``memory_budget``, or a quarter of the free memory up to 4 GiB.

    Parameters
    ----------
    device : torch.device
        The prepared transform's device (not CUDA: :data:`~rocketstream.config.MEMORY_BUDGET`).
    memory_budget : int, optional
        Bytes, used as given.

    Returns
    -------
    int
    """
    if memory_budget is not None:
        return int(memory_budget)
    if device.type != "cuda":
        return MEMORY_BUDGET
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(free * FREE_MEMORY_FRACTION, MAX_DEFAULT_BUDGET))


def transform(x, prepared: TritonKernels, batch_size: int | None = None, memory_budget: int | None = None,
              **tuning) -> torch.Tensor:
    """Features (n, F) float32 on the prepared transform's device; only one micro-batch at a time is on it.

    If the device runs out of memory anyway (other work on it), the micro-batch is halved and
    retried, down to one series with its taps recomputed in the kernel; only a single series
    that does not fit on the device raises, with the size it needs.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        float32 (n, C, L) anywhere (NumPy, CPU or GPU tensor).
    prepared : TritonKernels
        The layout for the model and device.
    batch_size : int, optional
        Series per micro-batch (default: sized from the budget, see :func:`batch_rows`).
    memory_budget : int, optional
        Bytes per step (default: :func:`gpu_budget`).
    **tuning
        Options of :meth:`TritonKernels.counts`.

    Returns
    -------
    torch.Tensor
        float32 (n, n_features_out) on the prepared transform's device.

    Raises
    ------
    InputError
        ``x`` has another channel count or length than the prepared transform transform.
    torch.cuda.OutOfMemoryError
        A single series does not fit on the device.
    """
    n, c, length = x.shape
    params = prepared.params
    if (c, length) != (params.n_channels, prepared.length):
        raise InputError(
            f"input has {c} channels of length {length}, the model expects "
            f"{params.n_channels} of length {prepared.length}"
        )
    budget = gpu_budget(prepared.device, memory_budget)
    rows, inline = batch_rows(c, length, prepared.pad, params.n_features_out, budget)
    rows = min(batch_size or rows, MAX_BATCH)
    tuning.setdefault("inline", inline)
    out = torch.empty(n, params.n_features_out, dtype=torch.float32, device=prepared.device)
    s = 0
    while s < n:
        try:
            xb = torch.as_tensor(x[s : s + rows]).to(device=prepared.device, dtype=torch.float32).contiguous()
            out[s : s + len(xb)] = prepared.ppv(prepared.counts(xb, **tuning))
        except torch.cuda.OutOfMemoryError as exc:
            xb = None
            if prepared.device.type == "cuda":
                torch.cuda.empty_cache()
            if rows > 1:
                rows //= 2
            elif not tuning["inline"]:
                tuning["inline"] = True
            else:
                need = c * length * _FLOAT + 16 * params.n_features_out
                raise torch.cuda.OutOfMemoryError(
                    f"one series of {c} x {length} float32 needs {need / 2**30:.2f} GiB on {prepared.device} "
                    "and does not fit; free GPU memory or transform on the CPU (device='cpu': the "
                    "native engine streams any length)"
                ) from exc
            continue
        s += len(xb)
    return out
