"""Fit from a subset: plan first (seeded draws), then read only the drawn rows, grouped by chunk."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import dask
import numpy as np

from ..core.biases import fit_biases
from ..core.budget import DEFAULT_MEMORY_BUDGET
from ..core.kernels import MIN_LENGTH
from ..core.parameters import MiniRocketParameters, plan
from ..core.validation import InputError
from ..core.variable import fit_variable_biases
from .schedule import dask_scheduler, session
from .source import RowSource

if TYPE_CHECKING:
    import dask.array as da
    import torch


def _block_of(arr: RowSource | da.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.concatenate([[0], np.cumsum(arr.chunks[0])])
    block = np.searchsorted(starts, rows, side="right") - 1
    return block, starts


def _rows_of_chunk(src: RowSource, lo: int, hi: int, local: np.ndarray) -> np.ndarray:
    return src(lo, hi)[local]


def gather_rows(arr: RowSource | da.Array, rows: np.ndarray, scheduler: Any = None) -> np.ndarray:
    """Read ``rows`` (sorted, unique) as float32 (k, C, L); only the chunks holding them are read,
    one task per chunk.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        (sample, channel, time) input.
    rows : numpy.ndarray
        Sorted, unique row indices.
    scheduler : Any, optional
        Passed to ``dask.compute``.

    Returns
    -------
    numpy.ndarray
        float32 (k, C, L).

    Raises
    ------
    IndexError
        A row index is out of range.
    InputError
        A row holds NaN or infinite values.
    MissingChunkError
        A row lies in an absent chunk of a Zarr input (without ``fill_missing``).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.empty((0, *arr.shape[1:]), dtype=np.float32)
    if rows.min() < 0 or rows.max() >= arr.shape[0]:
        raise IndexError(f"row index out of range for {arr.shape[0]} samples")
    block, starts = _block_of(arr, rows)
    parts = []
    for b in np.unique(block):
        local = rows[block == b] - starts[b]
        if isinstance(arr, RowSource):  # a task reads its chunk and keeps the drawn rows
            parts.append(dask.delayed(_rows_of_chunk)(arr, int(starts[b]), int(starts[b + 1]), local))
        else:
            parts.append(arr.blocks[int(b)][local])
    out = np.concatenate(dask.compute(*parts, scheduler=dask_scheduler(scheduler)), axis=0
                         ).astype(np.float32, copy=False)
    finite = np.isfinite(out).reshape(len(out), -1).all(1)
    if not finite.all():
        first = int(rows[~finite][0])
        raise InputError(f"X contains NaN or infinite values (first in sample {first}, drawn for the fit); "
                         "fill or drop them before MiniRocket (it has no missing-value rule)")
    return out


class RowGatherer:
    """``fetch_rows`` for :func:`rocketstream.core.fit_biases` over a Dask array, memory-bounded.

    If all distinct drawn rows fit ``memory_budget`` they are read once up front (each chunk at most
    once). Otherwise each request reads its own rows, with an LRU cache of rows bounded by the budget.
    ``rows_read`` counts every row read from the source. Calling it with row indices gives those rows
    as float32 (k, C, L).

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        (sample, channel, time) input.
    indices : numpy.ndarray
        The rows that will be requested (the plan's ``example_indices``).
    memory_budget : int, optional
        Bytes of rows kept in memory (default: :data:`~rocketstream.config.MEMORY_BUDGET`).
    scheduler : Any, optional
        Passed to ``dask.compute``.

    Attributes
    ----------
    unique : numpy.ndarray
        The distinct requested rows.
    prefetched : bool
        Whether they were all read up front.
    rows_read : int
        Rows read from the source so far.
    """

    def __init__(self, arr: RowSource | da.Array, indices: np.ndarray, memory_budget: int | None = None,
                 scheduler: Any = None) -> None:
        self.arr = arr
        self.scheduler = scheduler
        self.row_bytes = 4 * int(np.prod(arr.shape[1:]))
        budget = memory_budget or DEFAULT_MEMORY_BUDGET
        self.unique = np.unique(np.asarray(indices, dtype=np.int64))
        self.prefetched = self.unique.size * self.row_bytes <= budget
        self.capacity = max(1, budget // self.row_bytes)
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.rows_read = 0
        self.data: np.ndarray | None = None
        if self.prefetched:
            self.data = gather_rows(arr, self.unique, scheduler)
            self.rows_read = len(self.unique)

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        if self.data is not None:
            return self.data[np.searchsorted(self.unique, indices)]
        need = np.unique(indices)
        missing = np.array([r for r in need if int(r) not in self.cache], dtype=np.int64)
        if missing.size:
            rows = gather_rows(self.arr, missing, self.scheduler)
            self.rows_read += len(missing)
            for r, x in zip(missing.tolist(), rows, strict=True):
                self.cache[r] = x
        out = np.stack([self.cache[int(r)] for r in indices])
        for r in need.tolist():
            self.cache.move_to_end(r)
        while len(self.cache) > max(self.capacity, len(need)):
            self.cache.popitem(last=False)
        return out


def fit_array(
    arr: RowSource | da.Array,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
    scheduler: Any = None,
) -> tuple[MiniRocketParameters, RowGatherer]:
    """Plan on the array's shape, then fit the biases from only the drawn rows.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        (sample, channel, time) input.
    num_features, max_dilations_per_kernel, random_state, device, memory_budget
        As in :func:`rocketstream.core.fit`.
    scheduler : Any, optional
        Where the rows are read (see :func:`~rocketstream.graph.schedule.compute`).

    Returns
    -------
    params : MiniRocketParameters
        The fitted model.
    gatherer : RowGatherer
        For its read statistics.

    Raises
    ------
    InputError
        A bad parameter, or NaN/Inf in a drawn row.
    """
    n, c, length = (int(s) for s in arr.shape)
    params = plan(n, c, length, num_features, max_dilations_per_kernel, random_state)
    with session(scheduler) as client:  # an address: connected once for every read
        gatherer = RowGatherer(arr, params.example_indices, memory_budget, client)
        # rows read on demand: the steps go through the examples as many at a time as the cache keeps,
        # so each drawn row is read once
        fitted = fit_biases(params, gatherer, device=device, memory_budget=memory_budget,
                            window=None if gatherer.prefetched else gatherer.capacity)
    return fitted, gatherer


def fit_array_variable(
    arr: RowSource | da.Array,
    lengths: np.ndarray,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    memory_budget: int | None = None,
    scheduler: Any = None,
    pad_short: bool = False,
) -> tuple[MiniRocketParameters, RowGatherer]:
    """:func:`fit_array` for series stored padded with their ``lengths``: the variable-length rule
    (reference length = the longest series), reading only the drawn rows.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        (sample, channel, time) input, padded.
    lengths : numpy.ndarray
        Each series' own length.
    num_features, max_dilations_per_kernel, random_state, memory_budget
        As in :func:`rocketstream.core.fit`.
    scheduler : Any, optional
        Where the rows are read.
    pad_short : bool, default False
        Append zeros to series shorter than 9 points instead of refusing them.

    Returns
    -------
    params : MiniRocketParameters
        The fitted variable-length model.
    gatherer : RowGatherer
        For its read statistics.

    Raises
    ------
    InputError
        A bad parameter, NaN/Inf in a drawn row, or a drawn series shorter than 9 points without
        ``pad_short``.
    """
    n, c, _ = (int(s) for s in arr.shape)
    params = plan(n, c, max(int(lengths.max()), MIN_LENGTH), num_features, max_dilations_per_kernel,
                  random_state)
    with session(scheduler) as client:
        gatherer = RowGatherer(arr, params.example_indices, memory_budget, client)
        fitted = fit_variable_biases(params, lambda i: gatherer(np.array([i]))[0][:, : lengths[i]],
                                     pad_short)
    return fitted, gatherer
