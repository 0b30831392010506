"""Per-chunk transforms: a lazy (sample, feature) Dask array, or one task per sample chunk that
writes its block into a features store and then sets the chunk's done marker."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
from dask.base import tokenize
from dask.delayed import Delayed

from ..core.parameters import MiniRocketParameters
from ..core.serialization import to_dict
from ..core.transform import TransformPlan, transform
from ..core.validation import InputError, check_against_model
from ..core.variable import transform_variable
from ..storage.features import (
    FeatureStore,
    audit,
    check_chunk,
    chunk_done,
    input_digest,
    stored_input_digest,
    write_chunk,
)

log = logging.getLogger("rocketstream.graph")

_PLANS: OrderedDict[tuple[str, str], TransformPlan] = OrderedDict()
_PLANS_LOCK = threading.Lock()
_MAX_PLANS = 4


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` means the worker's accelerator if it has one, else its CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_key(params: MiniRocketParameters) -> str:
    """The model's checksum: identifies it across processes."""
    return to_dict(params)["sha256"]


def plan_for(params: MiniRocketParameters, device: torch.device | str | None = None,
             key: str | None = None) -> TransformPlan:
    """A :class:`TransformPlan` cached per (model, device) in this process: built once per worker."""
    dev = resolve_device(device)
    cache_key = (key or model_key(params), str(dev))
    with _PLANS_LOCK:
        plan = _PLANS.get(cache_key)
        if plan is None:
            plan = TransformPlan(params, dev)
            _PLANS[cache_key] = plan
            while len(_PLANS) > _MAX_PLANS:
                _PLANS.popitem(last=False)
        _PLANS.move_to_end(cache_key)
    return plan


def transform_block(block: np.ndarray, params: MiniRocketParameters, key: str | None = None,
                    device: torch.device | str | None = None, memory_budget: int | None = None,
                    start: int = 0, lengths: np.ndarray | None = None) -> np.ndarray:
    """Validate and transform one in-memory block; returns float32 NumPy (rows, features).

    A variable-length model takes each series over its own length (``lengths``, default: all).
    """
    x = np.ascontiguousarray(block, dtype=np.float32)
    what = f"X (samples {start}-{start + len(x) - 1})"
    check_against_model(x.shape, params, what)
    finite = np.isfinite(x)
    if not finite.all():  # name the sample by its index in the whole input, not in the block
        first = start + int(np.flatnonzero(~finite.reshape(len(x), -1).all(1))[0])
        raise InputError(f"{what} contains {int(x.size - finite.sum())} NaN or infinite value(s), first in "
                         f"sample {first}; fill or drop them before MiniRocket (it has no missing-value "
                         "rule)")
    if params.variable_length:
        return transform_variable(x, params, lengths, device=resolve_device(device))
    plan = plan_for(params, device, key)
    out = transform(x, params, memory_budget=memory_budget, plan=plan)
    return out.cpu().numpy()


def _map_block(block: np.ndarray, params: MiniRocketParameters, key: str, device: Any,
               memory_budget: int | None, block_info: Any = None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return transform_block(block, params, key, device, memory_budget, start)


def transform_array(arr: da.Array, params: MiniRocketParameters, device: torch.device | str | None = None,
                    memory_budget: int | None = None) -> da.Array:
    """Lazy (sample, feature) float32 features of a (sample, channel, time) Dask array."""
    check_against_model(tuple(arr.shape), params)
    if params.variable_length:
        raise InputError("a variable-length model needs the series lengths: use transform_to_zarr with "
                         "lengths= (or a store with a length variable)")
    key = model_key(params)
    return arr.map_blocks(
        _map_block, params=params, key=key, device=device, memory_budget=memory_budget,
        drop_axis=2, chunks=(arr.chunks[0], (params.n_features_out,)), dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
        name=f"rocketstream-transform-{key[:16]}-{tokenize(arr.name, str(device), memory_budget)}",
    )


def _write_task(block: np.ndarray, params: MiniRocketParameters, key: str, index: int, start: int,
                path: str, storage_options: dict[str, Any] | None, device: Any,
                memory_budget: int | None, lengths: np.ndarray | None = None) -> int:
    # A task re-run after its worker died (or a chunk finished by another run) finds its marker set:
    # it neither recomputes nor rewrites the chunk. Markers are set only after block and digest.
    if chunk_done(path, storage_options, index):
        audit("skip", path, index)
        return index
    block = np.ascontiguousarray(block, dtype=np.float32)
    feats = transform_block(block, params, key, device, memory_budget, start, lengths)
    # block, digests (features and the input rows they came from), then marker
    write_chunk(path, storage_options, index, start, feats, input_digest(block, lengths))
    return index


def _collect(indices: list[int]) -> list[int]:
    return sorted(int(i) for i in indices)


def missing_chunks(store: FeatureStore) -> list[int]:
    """Indices of the chunks of ``store`` not yet marked done (logged)."""
    todo = np.flatnonzero(~store.done()).tolist()
    log.info("transform: %d of %d chunks to compute (%d already done)", len(todo), store.n_chunks,
             store.n_chunks - len(todo))
    return todo


def _bad(indices: list[int], blocks: list[np.ndarray | None], lengths: list[np.ndarray | None], path: str,
         storage_options: dict[str, Any] | None, chunk_size: int, n_samples: int,
         ) -> tuple[list[int], list[int]]:
    """(chunks whose block fails its digest or cannot be read, chunks whose input rows differ from
    the recorded input digest)."""
    bad, changed = [], []
    for i, block, part in zip(indices, blocks, lengths, strict=True):
        if not check_chunk(path, storage_options, i, chunk_size, n_samples):
            bad.append(i)
        elif block is not None:
            want = stored_input_digest(path, storage_options, i)
            if want is not None and want != input_digest(np.ascontiguousarray(block, np.float32), part):
                changed.append(i)
    return bad, changed


def verify_graph(store: FeatureStore, chunks: list[int], arr: da.Array | None = None,
                 lengths: np.ndarray | None = None, per_task: int = 16) -> Delayed:
    """A Delayed giving ``(bad, changed)`` for ``chunks``: those whose block does not match its digest
    (or cannot be read), and, when the input ``arr`` is given, those whose input rows no longer match
    the input digest recorded when they were written. One task per ``per_task`` chunks."""
    blocks: list[Any] = [None] * len(chunks)
    if arr is not None and chunks and store.has_input_digests:
        blocks = list(_input_blocks(arr, store, chunks))
    parts = []
    for s in range(0, len(chunks), per_task):
        idx = chunks[s : s + per_task]
        part_lengths = [None if lengths is None else np.asarray(lengths[slice(*store.bounds(i))])
                        for i in idx]
        parts.append(dask.delayed(_bad, pure=False)(idx, blocks[s : s + per_task], part_lengths, store.path,
                                                    store.storage_options, store.chunk_size, store.n_samples))
    return dask.delayed(_merge, pure=False)(parts)


def _merge(parts: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    return sorted(i for p in parts for i in p[0]), sorted(i for p in parts for i in p[1])


def _input_blocks(arr: da.Array, store: FeatureStore, chunks: list[int]) -> Any:
    """The input rows of each of ``chunks`` (store chunking) as Delayed objects, from a graph that
    holds only those rows."""
    first, last = min(chunks), max(chunks)
    lo, hi = store.bounds(first)[0], store.bounds(last)[1]
    sub = arr[lo:hi].rechunk({0: store.chunk_size, 1: -1, 2: -1})
    return sub.blocks[[i - first for i in chunks]].to_delayed().ravel()


def write_features(arr: da.Array, params: MiniRocketParameters, store: FeatureStore,
                   device: torch.device | str | None = None, memory_budget: int | None = None,
                   chunks: list[int] | None = None, lengths: np.ndarray | None = None,
                   ) -> tuple[Delayed, list[int], str]:
    """Build the graph that computes ``chunks`` of ``store`` (default: those not yet marked done).

    Returns ``(delayed, todo, prefix)``: computing ``delayed`` runs one task per chunk and gives the
    sorted list of chunk indices it wrote; ``prefix`` names those tasks (for progress). The graph
    holds only the chunks asked for (the input is sliced to their rows before rechunking), so callers
    can bound its size by passing batches.
    """
    check_against_model(tuple(arr.shape), params)
    if arr.shape[0] != store.n_samples:
        raise ValueError(f"the input has {arr.shape[0]} samples but the store {store.display} was made for "
                         f"{store.n_samples}; use the same input, or overwrite=True")
    todo = missing_chunks(store) if chunks is None else [int(i) for i in chunks]
    key = model_key(params)
    token = tokenize(arr.name, store.path, key, str(device), memory_budget, todo)
    prefix = f"rocketstream-write-{token}"
    p = dask.delayed(params, name=f"rocketstream-params-{key}")
    tasks = []
    if todo:
        for i, block in zip(todo, _input_blocks(arr, store, todo), strict=True):
            start, stop = store.bounds(i)
            part = None if lengths is None else np.asarray(lengths[start:stop])
            tasks.append(dask.delayed(_write_task, pure=False)(
                block, p, key, i, start, store.path, store.storage_options, device, memory_budget, part,
                dask_key_name=f"{prefix}-{i}"))
    done = dask.delayed(_collect, pure=False)(tasks, dask_key_name=f"rocketstream-done-{token}")
    return done, todo, prefix
