"""The task side of a :class:`~rocketstream.storage.chunkstore.ChunkStore`: is a chunk done, write a chunk.

A task opens the store's arrays once per process, not once per chunk: opening a Zarr group and its
arrays reads one metadata document each, through zarr-python's single event-loop thread that every
task of the process shares (about 5 ms a chunk here, more than the writes themselves for small
chunks). The opened arrays are cached per process under the store's *layout token*, a sha256 of the
metadata of every array a task writes (data arrays, markers, digests), which the client computes when
it plans the run (:func:`layout_token`). A task that finds no cached arrays opens them and checks
their token: a store replaced or resized since the run was planned is refused
(:class:`~rocketstream.errors.StoreError`) instead of written with a stale layout. Growing a store
changes its arrays' shapes, hence its token: the next run opens the arrays again.

Chunk data is never cached: every done check reads the marker from the store.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from ..errors import StoreError
from .chunkstore import ATTR, DIGESTS, INPUT_DIGESTS, MARKERS, ChunkStore, audit, open_group, outputs_digest
from .locations import redact
from .zarrstore import WRITE_ALL

_CACHE: OrderedDict[tuple[str, str, str], TaskArrays] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8  # stores a worker writes to at once, at most (a run writes one)


@dataclass(frozen=True)
class TaskArrays:
    """A store's arrays as a task writes them (data arrays configured to store every chunk)."""

    names: tuple[str, ...]  # data arrays in digest order (empty for stores that do not record them)
    data: dict[str, zarr.Array]
    transposed: dict[str, bool]  # data arrays whose chunks are stored column-major
    markers: zarr.Array | None
    digests: zarr.Array | None
    input_digests: zarr.Array | None


def _transposed(arr: zarr.Array) -> bool:
    """Whether ``arr`` (2-D) stores its chunks column-major (a ``transpose`` filter of order (1, 0))."""
    from zarr.codecs import TransposeCodec

    filters = getattr(arr, "filters", ())
    return any(isinstance(f, TransposeCodec) and tuple(f.order) == (1, 0) for f in filters)


def _open(path: str, storage_options: dict[str, Any] | None) -> tuple[TaskArrays, str]:
    """Open the arrays a task writes, and their layout token."""
    group = open_group(path, storage_options)
    names = ChunkStore.data_names_of(dict(group.attrs).get(ATTR) or {})
    found: dict[str, zarr.Array] = {}
    for name in (*names, MARKERS, DIGESTS, INPUT_DIGESTS):
        try:
            found[name] = group[name]
        except KeyError:  # an old store (no digests), or not a complete one: see chunk_done, write_chunk
            pass
    layout = {"data_arrays": list(names),
              **{name: arr.metadata.to_dict() for name, arr in sorted(found.items())}}
    token = hashlib.sha256(json.dumps(layout, sort_keys=True, default=str).encode()).hexdigest()
    data = {name: found[name].with_config(WRITE_ALL) for name in names if name in found}
    arrays = TaskArrays(names, data, {name: _transposed(arr) for name, arr in data.items()},
                        found.get(MARKERS), found.get(DIGESTS), found.get(INPUT_DIGESTS))
    return arrays, token


def layout_token(path: str, storage_options: dict[str, Any] | None) -> str:
    """The layout token of the store at ``path``: what its tasks check their opened arrays against.

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.

    Returns
    -------
    str
        A sha256 (hex) of the metadata of the store's data arrays, markers and digests.
    """
    return _open(path, storage_options)[1]


def task_arrays(path: str, storage_options: dict[str, Any] | None, token: str | None = None) -> TaskArrays:
    """The arrays of the store at ``path`` for a task: cached in this process under ``token``.

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    token : str, optional
        :func:`layout_token` as the client saw it; None opens the arrays afresh and caches nothing.

    Returns
    -------
    TaskArrays

    Raises
    ------
    StoreError
        The store's arrays are no longer those of ``token`` (replaced or resized since).
    """
    if token is None:
        return _open(path, storage_options)[0]
    key = (path, json.dumps(storage_options, sort_keys=True, default=repr), token)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    arrays, found = _open(path, storage_options)
    if found != token:
        raise StoreError(f"the store {redact(path)} changed while this job ran (its arrays are not the ones "
                         "the job was planned for: another process replaced or resized it); run the command "
                         "again")
    with _CACHE_LOCK:
        _CACHE[key] = arrays
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return arrays


def chunk_done(path: str, storage_options: dict[str, Any] | None, index: int,
               token: str | None = None) -> bool:
    """Whether chunk ``index`` is marked done (an unreadable marker counts as not done).

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    index : int
        Chunk index.
    token : str, optional
        The store's :func:`layout_token` (caches the opened arrays).

    Returns
    -------
    bool

    Raises
    ------
    StoreError
        The store changed since ``token`` was taken.
    """
    try:
        markers = task_arrays(path, storage_options, token).markers
        return markers is not None and bool(markers[index] == 1)
    except StoreError:
        raise
    except Exception:
        return False


def write_chunk(path: str, storage_options: dict[str, Any] | None, index: int, start: int,
                outputs: dict[str, np.ndarray], source_digest: bytes | None = None,
                token: str | None = None) -> None:
    """Write one chunk's data arrays at rows ``start:``, then their digest and the digest of the input
    rows they came from, then the chunk's marker.

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    index : int
        Chunk index.
    start : int
        First sample of the chunk.
    outputs : dict of str to numpy.ndarray
        The chunk's data arrays by name.
    source_digest : bytes, optional
        :func:`~rocketstream.storage.chunkstore.input_digest` of the chunk's input rows.
    token : str, optional
        The store's :func:`layout_token` (caches the opened arrays).

    Raises
    ------
    StoreError
        The store changed since ``token`` was taken.
    """
    arrays = task_arrays(path, storage_options, token)
    names = arrays.names or tuple(outputs)
    if arrays.markers is None or any(name not in arrays.data for name in arrays.names):
        raise StoreError(f"the store {redact(path)} lacks its {MARKERS!r} array or a data array: it is not "
                         "a complete rocketstream store; create it again with overwrite=True / --overwrite")
    for name in names:
        values = outputs[name]
        if values.ndim == 2 and arrays.transposed.get(name):
            # in the layout the store encodes: the transposing copy happens here, on the task's
            # thread, instead of in zarr's single event-loop thread that every task's writes share
            values = np.asfortranarray(values)
        arr = arrays.data.get(name)
        if arr is None:  # an old store that does not list its data arrays
            arr = open_group(path, storage_options)[name].with_config(WRITE_ALL)
        arr[start : start + len(values)] = values
    digest = outputs_digest(outputs, names)
    if arrays.digests is not None:
        arrays.digests[index] = np.frombuffer(digest, dtype=np.uint8)
    if source_digest is not None and arrays.input_digests is not None:
        arrays.input_digests[index] = np.frombuffer(source_digest, dtype=np.uint8)
    # logged before the marker: a process killed in between leaves an unmarked chunk (rewritten
    # later, a second identical write), never a marked chunk with no write on record
    audit("write", path, index, start=int(start), rows=len(outputs[names[0]]), sha256=digest.hex())
    arrays.markers[index] = 1
