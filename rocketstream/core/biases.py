"""Bias fit: quantiles of the full padded convolution output of one drawn example per kernel."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import cpu_threads, resolve_device, resolve_device_type
from . import native
from .budget import DEFAULT_MEMORY_BUDGET, kernel_chunk_size, native_fit_chunk_size
from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters
from .tables import channel_slots
from .tensors import is_tensor

if TYPE_CHECKING:
    import torch

#: ``fetch_rows(indices)``: the rows as float32 (k, C, L), NumPy or torch
RowFetcher = Callable[[np.ndarray], Any]


def _ranks(n: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numba's ``np.quantile`` ranks: (lower index, upper index, float64 weight) per level."""
    q = np.asarray(levels, dtype=np.float64)
    rank = 1.0 + (n - 1) * ((q * 100.0) / 100.0)
    f = np.floor(rank)
    m = rank - f
    lo_idx = f.astype(np.int64) - 1
    hi_idx = np.minimum(lo_idx + 1, n - 1)
    return lo_idx, hi_idx, m


def _native_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """:func:`reference_quantiles` with the order statistics picked by the native kernel.

    ``values`` (R, n) C-contiguous float32 is reordered in place.
    """
    lo_idx, hi_idx, m = _ranks(values.shape[-1], levels)
    q = lo_idx.shape[1]
    stats = native.order_statistics(values, np.concatenate([lo_idx, hi_idx], axis=1))
    lo = stats[:, :q].astype(np.float64)
    hi = stats[:, q:].astype(np.float64)
    return (lo * (1.0 - m) + hi * m).astype(np.float32)


def reference_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles of each row of ``values`` (R, n) at ``levels`` (R, Q).

    Reproduces numba's ``np.quantile``: ``rank = 1 + (n - 1) * (100 q / 100)`` in float64,
    then ``lo * (1 - m) + hi * m`` between the two order statistics around ``rank``.

    Parameters
    ----------
    values : numpy.ndarray
        (R, n) values, one row per quantile set.
    levels : numpy.ndarray
        (R, Q) levels in [0, 1].

    Returns
    -------
    numpy.ndarray
        float32 (R, Q).
    """
    values = np.asarray(values)
    n = values.shape[-1]
    q = np.asarray(levels, dtype=np.float64)
    if n == 1:
        return np.broadcast_to(values[:, :1], q.shape).astype(np.float32)
    lo_idx, hi_idx, m = _ranks(n, q)
    out = np.empty(q.shape, dtype=np.float64)
    for r in range(values.shape[0]):
        kth = np.unique(np.concatenate([lo_idx[r], hi_idx[r]]))
        part = np.partition(values[r], kth)
        lo = part[lo_idx[r]].astype(np.float64)
        hi = part[hi_idx[r]].astype(np.float64)
        out[r] = lo * (1.0 - m[r]) + hi * m[r]
    return out.astype(np.float32)


def fit_biases(
    params: MiniRocketParameters,
    fetch_rows: RowFetcher,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
    window: int | None = None,
) -> MiniRocketParameters:
    """Fit the biases of a plan; ``fetch_rows(indices)`` returns those fit rows as (k, C, L).

    Rows are requested a kernel chunk at a time (never more than 84 at once), so memory is
    bounded by the series length, not by the fit set. On the CPU the native kernel is used when
    it is available (same bits; see :mod:`.native`). With ``window`` the steps go through the drawn
    examples ``window`` at a time (all kernels and dilations drawn on them, then the next ones), so
    that a fetcher keeping its last ``window`` rows reads each example once; the biases are the same
    in any order.

    Parameters
    ----------
    params : MiniRocketParameters
        A plan (see :func:`~rocketstream.core.plan`); its ``example_indices`` are the rows requested.
    fetch_rows : callable
        ``fetch_rows(indices)`` gives the rows ``indices`` (int64 array) as float32 (k, C, L), NumPy or torch.
    device : str or torch.device, optional
        Where to compute; None: CUDA where available, else the CPU.
    memory_budget : int, optional
        Bytes per step (default: :data:`~rocketstream.config.MEMORY_BUDGET`).
    window : int, optional
        Drawn examples per group of steps (for fetchers that read rows on demand and keep that many);
        None: dilation by dilation.

    Returns
    -------
    MiniRocketParameters
        ``params`` with its biases.
    """
    if resolve_device_type(device) == "cpu" and native.enabled():  # no torch needed
        kernel = native.NativeKernel(params)

        def native_outputs(rows, i: int, d: int, ks: np.ndarray) -> np.ndarray:
            return kernel.fit_outputs(_as_rows(rows), i, ks)

        # the steps run on every core (the native calls release the GIL), each within its share of
        # the budget; rows are still fetched one step at a time, in order, in this thread
        workers = cpu_threads()
        share = (memory_budget or DEFAULT_MEMORY_BUDGET) // workers
        chunk = native_fit_chunk_size(params.n_channels, params.length, share)
        return _fit_by_kernel_chunks(params, fetch_rows, chunk, native_outputs, _native_quantiles, workers,
                                     window)

    import torch

    from .convolution import DilationTaps, combination_outputs

    device = resolve_device(device)
    slots_all = channel_slots(params)

    def torch_outputs(rows, i: int, d: int, ks: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(rows) if not torch.is_tensor(rows) else rows)
        taps = DilationTaps(x.to(device=device, dtype=torch.float32), d)
        c = combination_outputs(taps.alpha, taps.gamma, torch.as_tensor(ks, device=device),
                                slots_all[i][torch.as_tensor(ks)].to(device), per_row=True, gamma_first=True)
        return c.cpu().numpy()

    chunk = kernel_chunk_size(params.n_channels, params.length, memory_budget)
    return _fit_by_kernel_chunks(params, fetch_rows, chunk, torch_outputs, reference_quantiles,
                                 window=window)


def _fit_by_kernel_chunks(
    params: MiniRocketParameters,
    fetch_rows: RowFetcher,
    chunk: int,
    outputs: Callable[[np.ndarray | torch.Tensor, int, int, np.ndarray], np.ndarray],
    quantiles: Callable[[np.ndarray, np.ndarray], np.ndarray],
    workers: int = 1,
    window: int | None = None,
) -> MiniRocketParameters:
    """The bias fit loop shared by both engines: per dilation, ``chunk`` kernels at a time, fetch
    their drawn rows, take ``outputs(rows, i, d, ks)`` (the full padded outputs, gamma-first order)
    and store their ``quantiles`` at the kernels' feature slots. With ``workers`` > 1 the steps'
    outputs and quantiles run in a thread pool, at most ``workers`` at a time (each writes its own
    slots: the biases do not depend on it); the rows are fetched in order in the calling thread.
    ``window``: see :func:`_steps`."""
    levels = params.quantiles
    offsets = params.feature_offsets()
    biases = np.empty(params.n_features_out, dtype=np.float32)

    def step(rows: Any, i: int, d: int, nfd: int, ks: np.ndarray) -> None:
        c = outputs(rows, i, d, ks)
        feat = offsets[i] + ks[:, None] * nfd + np.arange(nfd)[None, :]
        biases[feat] = quantiles(c, levels[feat])

    steps = _steps(params, chunk, window)
    if workers <= 1 or len(steps) < 2:
        for i, d, nfd, ks in steps:
            step(fetch_rows(params.example_indices[i * NUM_KERNELS + ks]), i, d, nfd, ks)
        return params.with_biases(biases)
    with ThreadPoolExecutor(workers, thread_name_prefix="rocketstream-fit") as pool:
        pending: deque[Future] = deque()
        for i, d, nfd, ks in steps:
            while len(pending) >= workers:
                pending.popleft().result()
            pending.append(pool.submit(step, fetch_rows(params.example_indices[i * NUM_KERNELS + ks]),
                                       i, d, nfd, ks))
        for f in pending:
            f.result()
    return params.with_biases(biases)


def _steps(params: MiniRocketParameters, chunk: int, window: int | None = None
           ) -> list[tuple[int, int, int, np.ndarray]]:
    """The bias fit's steps ``(dilation index, dilation, features per kernel, kernels)``, at most
    ``chunk`` kernels each, dilation by dilation; with ``window``, first grouped by the drawn examples
    ``window`` at a time (examples ascending), so that consecutive steps need the same few rows."""
    per = params.per_dilation()
    if window is None:
        return [(i, d, nfd, np.arange(k0, min(k0 + chunk, NUM_KERNELS)))
                for i, (d, nfd) in enumerate(per) for k0 in range(0, NUM_KERNELS, chunk)]
    drawn = np.asarray(params.example_indices, dtype=np.int64)
    dil, ker = np.divmod(np.arange(drawn.size), NUM_KERNELS)
    group = np.searchsorted(np.unique(drawn), drawn) // max(1, int(window))  # the window of each draw
    order = np.lexsort((ker, dil, group))  # by window, then dilation, then kernel
    run_of = group[order] * len(per) + dil[order]
    steps = []
    for run in np.split(order, np.flatnonzero(np.diff(run_of)) + 1):
        i = int(dil[run[0]])
        d, nfd = per[i]
        steps += [(i, d, nfd, ker[run[k0 : k0 + chunk]]) for k0 in range(0, len(run), chunk)]
    return steps


def _as_rows(rows: np.ndarray | torch.Tensor) -> np.ndarray:
    if is_tensor(rows):  # then torch is loaded already
        import torch

        rows = rows.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
    return np.ascontiguousarray(rows, dtype=np.float32)
