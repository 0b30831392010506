"""Bias fit: quantiles of the full padded convolution output of one drawn example per kernel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .budget import kernel_chunk_size
from .convolution import DilationTaps, combination_outputs
from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters
from .tables import channel_slots

RowFetcher = Callable[[np.ndarray], np.ndarray | torch.Tensor]


def reference_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles of each row of ``values`` (R, n) at ``levels`` (R, Q).

    Reproduces numba's ``np.quantile``: ``rank = 1 + (n - 1) * (100 q / 100)`` in float64,
    then ``lo * (1 - m) + hi * m`` between the two order statistics around ``rank``.
    Returns float32 (R, Q).
    """
    values = np.asarray(values)
    n = values.shape[-1]
    q = np.asarray(levels, dtype=np.float64)
    if n == 1:
        return np.broadcast_to(values[:, :1], q.shape).astype(np.float32)
    rank = 1.0 + (n - 1) * ((q * 100.0) / 100.0)
    f = np.floor(rank)
    m = rank - f
    lo_idx = f.astype(np.int64) - 1
    hi_idx = np.minimum(lo_idx + 1, n - 1)
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
) -> MiniRocketParameters:
    """Fit the biases of a plan; ``fetch_rows(indices)`` returns those fit rows as (k, C, L).

    Rows are requested a kernel chunk at a time (never more than 84 at once), so memory is
    bounded by the series length, not by the fit set.
    """
    device = torch.device(device or "cpu")
    slots_all = channel_slots(params)
    levels = params.quantiles
    offsets = params.feature_offsets()
    biases = np.empty(params.n_features_out, dtype=np.float32)
    chunk = kernel_chunk_size(params.n_channels, params.length, memory_budget)
    for i, (d, nfd) in enumerate(params.per_dilation()):
        for k0 in range(0, NUM_KERNELS, chunk):
            ks = np.arange(k0, min(k0 + chunk, NUM_KERNELS))
            combs = i * NUM_KERNELS + ks
            rows = fetch_rows(params.example_indices[combs])
            x = torch.as_tensor(np.asarray(rows) if not torch.is_tensor(rows) else rows)
            x = x.to(device=device, dtype=torch.float32)
            taps = DilationTaps(x, d)
            c = combination_outputs(
                taps.alpha,
                taps.gamma,
                torch.as_tensor(ks, device=device),
                slots_all[i][torch.as_tensor(ks)].to(device),
                per_row=True,
                gamma_first=True,
            )
            del taps
            feat = offsets[i] + ks[:, None] * nfd + np.arange(nfd)[None, :]
            biases[feat] = reference_quantiles(c.cpu().numpy(), levels[feat])
    return params.with_biases(biases)
