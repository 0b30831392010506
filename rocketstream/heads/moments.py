"""Streamed per-feature moments (float64, Chan's parallel merge) and a chunked Dask reduction helper."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from dask.delayed import Delayed

from rocketstream.core import InputError
from rocketstream.graph.schedule import dask_scheduler

from .loader import FeatureSource, block_slices, default_workers, single_threaded_blas

#: rows converted to float64 at a time
MOMENT_ROWS = 256


@dataclass(frozen=True)
class Moments:
    """Per-feature count, mean, population variance (ddof=0) and standard deviation, all float64."""

    count: int
    mean: np.ndarray
    var: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def scale(self) -> np.ndarray:
        """Standard deviations with (near-)constant features set to 1, as scikit-learn's StandardScaler."""
        eps = np.finfo(np.float64).eps
        n = self.count
        constant = self.var <= n * eps * self.var + (n * self.mean * eps) ** 2
        return np.where(constant, 1.0, self.std)


def chain_reduce(
    blocks: Sequence[Any],
    step: Callable[..., Any],
    combine: Callable[[Any, Any], Any],
    args: Sequence[tuple] | None = None,
    n_chains: int | None = None,
) -> Any:
    """Reduce ``blocks`` with Dask: ``n_chains`` sequential folds run in parallel, then a pairwise tree.

    ``step(acc, blocks[i], *args[i])`` folds block ``i`` into an accumulator (``acc`` is None for a chain's
    first block),
    ``combine(a, b)`` merges two accumulators. Each chain holds one accumulator and one block at a time,
    so memory is bounded by ``n_chains`` x (accumulator + block) whatever the number of blocks. Runs on
    the default scheduler or the active dask.distributed client.
    """
    if not blocks:
        raise ValueError("nothing to reduce")
    n_chains = max(1, min(n_chains or default_workers(), len(blocks)))
    step_d = dask.delayed(step, pure=False)
    combine_d = dask.delayed(combine, pure=False)
    chains: list[Delayed] = []
    args = args if args is not None else [()] * len(blocks)
    for j in range(n_chains):
        acc = None
        for i in range(j, len(blocks), n_chains):
            acc = step_d(acc, blocks[i], *args[i])
        chains.append(acc)
    while len(chains) > 1:
        chains = [
            combine_d(chains[i], chains[i + 1]) if i + 1 < len(chains) else chains[i]
            for i in range(0, len(chains), 2)
        ]
    with single_threaded_blas():
        return chains[0].compute(scheduler=dask_scheduler())


def _block_moments(x: np.ndarray, mask: np.ndarray | None, start: int) -> tuple:
    """(count, mean, M2, n_non_finite, first_bad_row) of some rows; finiteness is checked on all rows."""
    x = np.asarray(x)
    bad_rows = ~np.isfinite(x).all(axis=1)
    n_bad = int(np.count_nonzero(~np.isfinite(x))) if bad_rows.any() else 0
    first_bad = start + int(np.argmax(bad_rows)) if n_bad else -1
    if mask is not None:
        x = x[mask]
    if x.shape[0] == 0 or n_bad:
        zeros = np.zeros(x.shape[1])
        return 0, zeros, zeros.copy(), n_bad, first_bad
    acc = None
    for s in range(0, x.shape[0], MOMENT_ROWS):  # small float64 temporaries
        x64 = x[s : s + MOMENT_ROWS].astype(np.float64)
        mean = x64.mean(axis=0)
        x64 -= mean
        np.square(x64, out=x64)
        part = (x64.shape[0], mean, x64.sum(axis=0), 0, -1)
        acc = part if acc is None else _merge(acc, part)
    return (*acc[:3], n_bad, first_bad)


def _merge(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s pairwise merge of (count, mean, M2) plus non-finite bookkeeping."""
    na, mean_a, m2a, bad_a, first_a = a
    nb, mean_b, m2b, bad_b, first_b = b
    first = first_a if first_a >= 0 else first_b
    n = na + nb
    if n == 0:
        return 0, mean_a, m2a, bad_a + bad_b, first
    delta = mean_b - mean_a
    mean = mean_a + delta * (nb / n)
    m2 = m2a + m2b + delta**2 * (na * nb / n)
    return n, mean, m2, bad_a + bad_b, first


def _moments_step(acc: tuple | None, item: Any, mask: np.ndarray | None, start: int) -> tuple:
    for off, x in block_slices(item):
        part = _block_moments(x, None if mask is None else mask[off : off + x.shape[0]], start + off)
        acc = part if acc is None else _merge(acc, part)
    return acc


def check_finite_summary(n_bad: int, first_row: int, what: str = "features") -> None:
    """Raise a clear error when the streamed pass found NaN or Inf values."""
    if n_bad:
        raise InputError(
            f"{what} contain {n_bad} NaN/Inf value(s) (first in row {first_row}); "
            "clean or impute them (e.g. recompute the features from finite series) before training"
        )


def feature_moments(
    features: Any,
    row_mask: np.ndarray | None = None,
    n_chains: int | None = None,
    what: str = "features",
) -> Moments:
    """Per-feature mean and variance of the (selected) rows, streamed block by block through Dask.

    Accumulates in float64 with Chan's merge; raises ``InputError`` if any value is NaN or Inf.
    """
    source = features if isinstance(features, FeatureSource) else FeatureSource(features, what=what)
    blocks = source.block_items()
    args = []
    for b in range(len(blocks)):
        start, stop = source.block(b)
        mask = None if row_mask is None else np.asarray(row_mask[start:stop], dtype=bool)
        args.append((mask, start))
    acc = chain_reduce(blocks, _moments_step, _merge, args, n_chains)
    n, mean, m2, n_bad, first_bad = acc
    check_finite_summary(n_bad, first_bad, what)
    if n == 0:
        raise InputError(f"no rows selected from {what}")
    return Moments(count=int(n), mean=mean, var=m2 / n)
