"""Row-chunked access to a features array (Zarr, NumPy or Dask) and a seeded shuffling loader.

Rows are read one block at a time (plus one block prefetched): a block is one or more consecutive
storage chunks, so memory depends on the block size and the number of features, never on the number
of rows.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from rocketstream.core import InputError
from rocketstream.storage.features import FeatureStore, VerifiedFeatures, verified_features_of

if TYPE_CHECKING:
    import dask.array as da

#: rows handled at a time inside one reduction task (float64 temporaries stay small)
SLICE_ROWS = 1024
#: rows per block for sources without a natural row chunking (NumPy arrays)
DEFAULT_BLOCK_ROWS = 4096


class FeatureSource:
    """A (n_samples, n_features) float features array read block by block along rows.

    Accepts a features store (:class:`FeatureStore`, or its ``features`` Zarr array, both read through
    :class:`VerifiedFeatures` so that every chunk read is checked), an xarray DataArray (e.g. from
    ``open_features``), a ``zarr.Array``, a NumPy array (or array-like) or a ``dask.array.Array``.
    Blocks follow the storage chunks (Zarr row chunks, Dask row chunks), grouped so each block holds
    at least ``min_block_rows`` rows where possible. ``model_fingerprint`` is the fingerprint of the
    model that made the features, where the source records it (else None).
    """

    def __init__(self, features: Any, min_block_rows: int = 0, what: str = "features") -> None:
        self.model_fingerprint: str | None = None
        if isinstance(features, FeatureSource):
            self.model_fingerprint = features.model_fingerprint
            features = features.data
        if isinstance(features, FeatureStore):
            features = features.verified()
        elif isinstance(features, zarr.Array):
            features = verified_features_of(features) or features
        elif _is_dataarray(features):
            self.model_fingerprint = _fingerprint_of_attrs(features.attrs)
            features = features.data
        if isinstance(features, VerifiedFeatures):
            self.model_fingerprint = features.model_fingerprint
            kind, chunk_rows = "zarr", [int(features.chunks[0])]
        elif isinstance(features, zarr.Array):
            kind, chunk_rows = "zarr", [int(features.chunks[0])]
        elif _is_dask_array(features):
            kind, chunk_rows = "dask", [int(c) for c in features.chunks[0]]
        else:
            if not hasattr(features, "shape") or not hasattr(features, "dtype"):
                features = np.asarray(features)
            kind, chunk_rows = "numpy", [DEFAULT_BLOCK_ROWS]
        shape = tuple(int(s) for s in features.shape)
        if len(shape) != 2:
            raise InputError(
                f"{what} must be 2-D (n_samples, n_features), got {len(shape)}-D shape {shape}"
            )
        if shape[0] < 1 or shape[1] < 1:
            raise InputError(f"{what} is empty (shape {shape}); expected at least one row and one feature")
        dtype = np.dtype(features.dtype)
        if dtype.kind not in "fiu":
            raise InputError(f"{what} must have a real numeric dtype, got {dtype}")
        self.data = features
        self.kind = kind
        self.n_samples, self.n_features = shape
        self.dtype = dtype
        self.chunk_bounds = _chunk_bounds(self.n_samples, chunk_rows)
        self.bounds = _group_bounds(self.chunk_bounds, min_block_rows)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_samples, self.n_features

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def block(self, i: int) -> tuple[int, int]:
        """Row range ``[start, stop)`` of block ``i``."""
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a float32 NumPy array."""
        part = self.data[start:stop]
        if self.kind == "dask":
            part = part.compute(scheduler="sync")
        return np.asarray(part, dtype=np.float32)

    def read_selected(self, start: int, stop: int, select: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` where ``select`` (a boolean mask of that range) is true, as float32.

        Reads one storage chunk at a time into the output, so only the selected rows are held.
        """
        if select is None:
            return self.read(start, stop)
        out = np.empty((int(np.count_nonzero(select)), self.n_features), dtype=np.float32)
        cb = self.chunk_bounds
        edges = np.concatenate([[start], cb[(cb > start) & (cb < stop)], [stop]])
        pos = 0
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            sel = select[a - start : b - start]
            k = int(np.count_nonzero(sel))
            if k:
                out[pos : pos + k] = self.read(int(a), int(b))[sel]
                pos += k
        return out

    def block_items(self) -> list[Any]:
        """One item per block for Dask tasks: Zarr blocks as a small reference read inside the task
        (so a task holds only its own block), NumPy blocks as views, Dask blocks as delayed objects."""
        if self.kind == "dask":
            return self.to_dask().to_delayed().ravel().tolist()
        if self.kind == "zarr":
            return [BlockRef(self.data, *self.block(b)) for b in range(self.n_blocks)]
        return [self.data[slice(*self.block(b))] for b in range(self.n_blocks)]

    def to_dask(self) -> da.Array:
        """The features as a Dask array chunked by this source's blocks (all features in one chunk)."""
        import dask.array as da

        rows = tuple(int(b) for b in np.diff(self.bounds))
        if isinstance(self.data, VerifiedFeatures):
            arr = self.data.to_dask()
        elif self.kind == "zarr":
            arr = da.from_zarr(self.data)
        elif self.kind == "dask":
            arr = self.data
        else:
            arr = da.from_array(self.data, chunks=(rows, -1))
        return arr.rechunk((rows, -1))


def model_fingerprint(source: FeatureSource, model: Any = None) -> str | None:
    """The fingerprint of the model that made ``source``'s features: the one the source records, or
    ``model`` (fitted parameters or a fingerprint string); a contradiction between them is an error."""
    from rocketstream.core.serialization import fingerprint
    from rocketstream.errors import IdentityMismatchError

    given = model if isinstance(model, str) or model is None else fingerprint(model)
    if given and source.model_fingerprint and given != source.model_fingerprint:
        raise IdentityMismatchError(f"the features were made by model {source.model_fingerprint[:12]} but "
                                    f"model={given[:12]} was given; pass the model that made them, or none")
    return given or source.model_fingerprint


def _is_dask_array(obj: Any) -> bool:
    """Whether ``obj`` is a Dask array (one exists only once ``dask.array`` is loaded: no import here)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(obj, da.Array)


def _is_dataarray(obj: Any) -> bool:
    return type(obj).__name__ == "DataArray" and hasattr(obj, "attrs") and hasattr(obj, "data")


def _fingerprint_of_attrs(attrs: dict) -> str | None:
    """The model fingerprint recorded on a features DataArray (``rocketstream_model``), if any."""
    import json

    from rocketstream.core.serialization import fingerprint_dict

    raw = attrs.get("rocketstream_model")
    try:
        return fingerprint_dict(json.loads(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


class BlockRef:
    """Rows ``start:stop`` of a Zarr array, read when a task needs them."""

    def __init__(self, array: zarr.Array, start: int, stop: int) -> None:
        self.array, self.start, self.stop = array, start, stop


def block_slices(item: Any, max_rows: int = SLICE_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, rows)`` pieces of a block item from :meth:`FeatureSource.block_items`.

    Zarr blocks are read piece by piece (pieces aligned to the storage chunks), so a task holds about
    ``max_rows`` rows at a time whatever the block size.
    """
    if isinstance(item, BlockRef):
        chunk = int(item.array.chunks[0])
        step = max(1, max_rows // chunk) * chunk
        for s in range(item.start, item.stop, step):
            yield s - item.start, np.asarray(item.array[s : min(item.stop, s + step)])
    else:
        x = np.asarray(item)
        for s in range(0, x.shape[0], max_rows):
            yield s, x[s : s + max_rows]


def _chunk_bounds(n: int, chunk_rows: list[int]) -> np.ndarray:
    """Row boundaries: explicit chunk sizes (several given) or a regular step (one given)."""
    if len(chunk_rows) > 1 or chunk_rows[0] == n:
        return np.concatenate([[0], np.cumsum(chunk_rows)]).astype(np.int64)
    step = max(1, chunk_rows[0])
    return np.append(np.arange(0, n, step, dtype=np.int64), n)


def _group_bounds(bounds: np.ndarray, min_rows: int) -> np.ndarray:
    """Merge consecutive chunks until each block has at least ``min_rows`` rows (the last may be short)."""
    if min_rows <= 1:
        return bounds
    out = [int(bounds[0])]
    for b in bounds[1:]:
        if b - out[-1] >= min_rows:
            out.append(int(b))
    if out[-1] != int(bounds[-1]):
        out.append(int(bounds[-1]))
    return np.asarray(out, dtype=np.int64)


def default_workers() -> int:
    """Threads of the active dask.distributed client, else this machine's CPU count."""
    if "distributed" in sys.modules:  # a client can only exist if distributed was imported
        try:
            from distributed import get_client

            return max(1, sum(get_client().nthreads().values()))
        except (ImportError, ValueError):
            pass
    return max(1, os.cpu_count() or 1)


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while Dask runs blocks in parallel (avoids oversubscription).

    Uses threadpoolctl when installed; otherwise does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The private generator for one epoch: the same ``(seed, epoch)`` always gives the same order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(0, int(epoch)))))


def split_rng(seed: int) -> np.random.Generator:
    """The private generator for the validation split (independent of the epoch generators)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(1,))))


def read_blocks(
    source: FeatureSource, order: Iterable[int], row_mask: np.ndarray | None = None, prefetch: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row_indices, float32 rows)`` of the selected rows of each block in ``order``.

    With ``prefetch`` the next block is read in a background thread while the current one is used,
    so at most two blocks are in memory.
    """
    blocks = []
    for b in order:
        start, stop = source.block(int(b))
        idx = np.arange(start, stop, dtype=np.int64)
        sel = None if row_mask is None else np.asarray(row_mask[start:stop], dtype=bool)
        if sel is not None:
            if not sel.any():
                continue
            idx = idx[sel]
        blocks.append((start, stop, idx, sel))

    def load(item: tuple) -> np.ndarray:
        start, stop, _, sel = item
        return source.read_selected(start, stop, sel)

    if not prefetch or len(blocks) < 2:
        for item in blocks:
            yield item[2], load(item)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load, blocks[0])
        for i, item in enumerate(blocks):
            x = future.result()
            if i + 1 < len(blocks):
                future = pool.submit(load, blocks[i + 1])
            yield item[2], x


class ChunkShuffleLoader:
    """Minibatches of selected rows, shuffled by block and within block, deterministic per epoch.

    Each epoch visits the blocks in a seeded random order, reads one block at a time, keeps the rows
    where ``row_mask`` is true, permutes them, and cuts minibatches of ``batch_size``; rows left over
    at the end of a block are carried into the next one, so no row is dropped (the last minibatch of
    an epoch may be short). Yields ``(row_indices, features)`` with float32 features.
    """

    def __init__(
        self,
        source: FeatureSource,
        batch_size: int = 256,
        seed: int = 0,
        row_mask: np.ndarray | None = None,
        prefetch: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.source = source
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.row_mask = row_mask
        self.prefetch = prefetch

    def __len__(self) -> int:
        n = self.source.n_samples if self.row_mask is None else int(np.count_nonzero(self.row_mask))
        return -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over one epoch's minibatches."""
        rng = epoch_rng(self.seed, epoch)
        order = rng.permutation(self.source.n_blocks)
        carry_idx = np.empty(0, dtype=np.int64)
        carry_x = np.empty((0, self.source.n_features), dtype=np.float32)
        bs = self.batch_size
        for keep, x in read_blocks(self.source, order, self.row_mask, self.prefetch):
            perm = rng.permutation(keep.size)
            pos = 0
            if carry_idx.size:  # complete the minibatch begun in the previous block
                take = perm[: bs - carry_idx.size]
                carry_idx = np.concatenate([carry_idx, keep[take]])
                carry_x = np.concatenate([carry_x, x[take]])
                pos = take.size
                if carry_idx.size < bs:
                    continue
                yield carry_idx, carry_x
            for s in range(pos, keep.size - bs + 1, bs):
                sel = perm[s : s + bs]
                yield keep[sel], x[sel]
                pos = s + bs
            carry_idx, carry_x = keep[perm[pos:]], x[perm[pos:]]
        if carry_idx.size:
            yield carry_idx, carry_x
