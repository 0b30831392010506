"""Micro-batch sizing: how many series and kernels fit in a memory budget."""

from __future__ import annotations

from ..config import CPU_STEP_BUDGET, NATIVE_INPUT_BUDGET
from ..config import MEMORY_BUDGET as DEFAULT_MEMORY_BUDGET

#: re-exported: the budgets live in :mod:`rocketstream.config`
__all__ = ["CPU_STEP_BUDGET", "DEFAULT_MEMORY_BUDGET", "NATIVE_INPUT_BUDGET", "kernel_chunk_size",
           "native_fit_chunk_size", "native_input_rows", "transform_batch_shape"]

_FLOAT = 4


def _taps_bytes(n_channels: int, length: int) -> int:
    # zero-padded input, C_alpha, padded A (transient) and padded G, per series
    return 5 * (n_channels + 1) * length * _FLOAT


def _kernel_bytes(length: int) -> int:
    # accumulator, one channel term and the comparison mask, per series and kernel
    return 3 * length * _FLOAT


def kernel_chunk_size(n_channels: int, length: int, memory_budget: int | None = None) -> int:
    """Kernels (each on its own example row) processed at once by the bias fit.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    memory_budget : int, optional
        Bytes per step (default: :data:`DEFAULT_MEMORY_BUDGET`).

    Returns
    -------
    int
        Between 1 and 84.
    """
    budget = memory_budget or DEFAULT_MEMORY_BUDGET
    per_row = _taps_bytes(n_channels, length) + _kernel_bytes(length)
    return int(max(1, min(84, budget // per_row)))


def transform_batch_shape(
    n_channels: int, length: int, memory_budget: int | None = None, max_batch: int = 4096
) -> tuple[int, int]:
    """Return ``(series, kernels)`` per step so one step's working set stays within the budget.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    memory_budget : int, optional
        Bytes per step (default: :data:`DEFAULT_MEMORY_BUDGET`).
    max_batch : int, default 4096
        Upper bound on the series per step.

    Returns
    -------
    series, kernels : int
        Series per micro-batch (1 to ``max_batch``) and kernels per step (1 to 42); all 42 kernels
        whenever at least one series fits with them.
    """
    budget = memory_budget or DEFAULT_MEMORY_BUDGET
    taps = _taps_bytes(n_channels, length)
    per_series_all = taps + 42 * _kernel_bytes(length)
    if per_series_all <= budget:
        return int(max(1, min(max_batch, budget // per_series_all))), 42
    spare = max(budget - taps, 0)
    return 1, int(max(1, min(42, spare // _kernel_bytes(length))))


def native_input_rows(n_channels: int, length: int, memory_budget: int | None = None) -> int:
    """Series converted to contiguous float32 per step by the native CPU transform.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    memory_budget : int, optional
        Bytes per step (default: :data:`NATIVE_INPUT_BUDGET`).

    Returns
    -------
    int
        At least 1.
    """
    budget = memory_budget or NATIVE_INPUT_BUDGET
    return int(max(1, budget // (n_channels * length * _FLOAT)))


def native_fit_chunk_size(n_channels: int, length: int, memory_budget: int | None = None) -> int:
    """Kernels (each with its own example row) per step of the native bias fit.

    A step holds the rows (C, L) and one float32 output row (L) per kernel.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    memory_budget : int, optional
        Bytes per step (default: :data:`DEFAULT_MEMORY_BUDGET`).

    Returns
    -------
    int
        Between 1 and 84.
    """
    budget = memory_budget or DEFAULT_MEMORY_BUDGET
    per_row = (n_channels + 1) * length * _FLOAT
    return int(max(1, min(84, budget // per_row)))
