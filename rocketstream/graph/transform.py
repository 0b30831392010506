"""Per-chunk transforms: a lazy (sample, feature) Dask array, or the chunk job (see
:mod:`rocketstream.graph.runner`) that writes the features of each sample chunk into a features store."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from dask.base import tokenize

from ..config import resolve_device, resolve_device_type
from ..core.parameters import MiniRocketParameters
from ..core.serialization import fingerprint
from ..core.transform import PreparedTransform, transform_numpy
from ..core.validation import InputError, check_against_model
from ..core.variable import transform_variable
from ..errors import IdentityMismatchError
from .runner import ChunkJob

if TYPE_CHECKING:
    import dask.array as da
    import torch

    from .source import RowSource

log = logging.getLogger("rocketstream.graph")

_PREPARED: OrderedDict[tuple[str, str], PreparedTransform] = OrderedDict()
_PREPARED_LOCK = threading.Lock()
_MAX_PREPARED = 4


def prepared_transform(params: MiniRocketParameters, device: torch.device | str | None = None,
             key: str | None = None) -> PreparedTransform:
    """A :class:`PreparedTransform` cached per (model, device) in this process: built once per worker.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.
    device : str or torch.device, optional
        None: CUDA where available, else the CPU.
    key : str, optional
        :func:`~rocketstream.core.fingerprint` of ``params``, if known.

    Returns
    -------
    PreparedTransform
    """
    # the CPU is named without importing torch (the native engine needs none)
    dev = "cpu" if resolve_device_type(device) == "cpu" else resolve_device(device)
    cache_key = (key or fingerprint(params), str(dev))
    with _PREPARED_LOCK:
        prepared = _PREPARED.get(cache_key)
        if prepared is None:
            prepared = PreparedTransform(params, dev)
            _PREPARED[cache_key] = prepared
            while len(_PREPARED) > _MAX_PREPARED:
                _PREPARED.popitem(last=False)
        _PREPARED.move_to_end(cache_key)
    return prepared


def transform_block(block: np.ndarray, params: MiniRocketParameters, key: str | None = None,
                    device: torch.device | str | None = None, memory_budget: int | None = None,
                    start: int = 0, lengths: np.ndarray | None = None) -> np.ndarray:
    """Validate and transform one in-memory block; returns float32 NumPy (rows, features).

    A variable-length model takes each series over its own length (``lengths``, default: all).

    Parameters
    ----------
    block : numpy.ndarray
        (rows, channels, length) input rows.
    params : MiniRocketParameters
        A fitted model.
    key : str, optional
        :func:`~rocketstream.core.fingerprint` of ``params``, if known.
    device : str or torch.device, optional
        None: CUDA where available, else the CPU.
    memory_budget : int, optional
        Bytes per micro-batch step.
    start : int, default 0
        Index of the first row in the whole input (for messages).
    lengths : numpy.ndarray, optional
        The rows' own lengths (variable-length models).

    Returns
    -------
    numpy.ndarray
        float32 (rows, n_features_out).

    Raises
    ------
    InputError
        The block does not fit the model, or holds NaN/Inf (the message names the sample).
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
        return transform_variable(x, params, lengths, device=device)
    prepared = prepared_transform(params, device, key)
    return transform_numpy(x, params, memory_budget=memory_budget, prepared=prepared)


def _map_block(block: np.ndarray, params: MiniRocketParameters, key: str, device: Any,
               memory_budget: int | None, block_info: Any = None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return transform_block(block, params, key, device, memory_budget, start)


def transform_array(arr: da.Array, params: MiniRocketParameters, device: torch.device | str | None = None,
                    memory_budget: int | None = None) -> da.Array:
    """Lazy (sample, feature) float32 features of a (sample, channel, time) Dask array.

    Parameters
    ----------
    arr : dask.array.Array
        (sample, channel, time) input, chunked along samples only.
    params : MiniRocketParameters
        A fitted fixed-length model.
    device : str or torch.device, optional
        Where each block is computed; None: CUDA where the worker has it, else its CPU.
    memory_budget : int, optional
        Bytes per micro-batch step.

    Returns
    -------
    dask.array.Array
        float32 (n_samples, n_features_out), one block per input chunk.

    Raises
    ------
    InputError
        The input does not fit the model, or the model is variable-length (it needs lengths).
    """
    check_against_model(tuple(arr.shape), params)
    if params.variable_length:
        raise InputError("a variable-length model needs the series lengths: use transform_to_zarr with "
                         "lengths= (or a store with a length variable)")
    key = fingerprint(params)
    return arr.map_blocks(
        _map_block, params=params, key=key, device=device, memory_budget=memory_budget,
        drop_axis=2, chunks=(arr.chunks[0], (params.n_features_out,)), dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
        name=f"rocketstream-transform-{key[:16]}-{tokenize(arr.name, str(device), memory_budget)}",
    )


def features_of(block: np.ndarray, start: int, lengths: np.ndarray | None, *, params: MiniRocketParameters,
                key: str, device: Any = None, memory_budget: int | None = None) -> dict[str, np.ndarray]:
    """One chunk's outputs for the features store (a :data:`~rocketstream.graph.runner.BlockFunction`).

    Parameters
    ----------
    block : numpy.ndarray
        The chunk's input rows.
    start : int
        Index of its first row.
    lengths : numpy.ndarray or None
        The rows' own lengths (variable-length models).
    params, key, device, memory_budget
        As in :func:`transform_block`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"features": float32 (rows, n_features_out)}``.
    """
    return {"features": transform_block(block, params, key, device, memory_budget, start, lengths)}


def features_job(arr: RowSource | da.Array, params: MiniRocketParameters, store: Any, device: Any = None,
                 memory_budget: int | None = None, lengths: np.ndarray | None = None) -> ChunkJob:
    """The chunk job that fills the features store ``store`` with the features of ``arr``.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        (sample, channel, time) input.
    params : MiniRocketParameters
        A fitted model.
    store : FeatureStore
        The output, made for ``arr``'s samples.
    device : str or torch.device, optional
        Where the tasks compute; None: CUDA where the worker has it, else its CPU.
    memory_budget : int, optional
        Bytes per micro-batch step.
    lengths : numpy.ndarray, optional
        Per-series lengths (variable-length models).

    Returns
    -------
    ChunkJob

    Raises
    ------
    InputError
        The input does not fit the model.
    IdentityMismatchError
        The store was made for another number of samples.
    """
    check_against_model(tuple(arr.shape), params)
    if arr.shape[0] != store.n_samples:
        raise IdentityMismatchError(f"the input has {arr.shape[0]} samples but the store {store.display} was "
                                    f"made for {store.n_samples}; use the same input, or overwrite=True")
    fn = partial(features_of, params=params, key=fingerprint(params), device=device,
                 memory_budget=memory_budget)
    return ChunkJob(arr, store, fn, lengths, "transform")
