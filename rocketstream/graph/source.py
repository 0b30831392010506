"""Turn an array-like (Zarr, Dask, NumPy) into a validated Dask array chunked along samples only."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize

from ..config import TASK_CHUNK_BYTES
from ..core.validation import InputError, check_dtype, check_shape
from ..storage.zarrstore import CheckedArray

DEFAULT_CHUNK_BYTES = TASK_CHUNK_BYTES


def default_chunk_size(n_channels: int, length: int, n_features: int = 0,
                       chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Samples per chunk so that the input block (and its feature block) stay near ``chunk_bytes``.

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    n_features : int, default 0
        Features per sample.
    chunk_bytes : int, default DEFAULT_CHUNK_BYTES
        Target bytes per block (64 MiB).

    Returns
    -------
    int
        At least 1.
    """
    per_row = 4 * max(n_channels * length, n_features, 1)
    return int(max(1, chunk_bytes // per_row))


def from_checked(checked: CheckedArray) -> da.Array:
    """A Dask array reading a Zarr input through :class:`CheckedArray` (absent chunks are errors).

    Parameters
    ----------
    checked : CheckedArray

    Returns
    -------
    dask.array.Array
        Chunked like the Zarr array.
    """
    name = "zarr-input-" + tokenize(checked.where, checked.array.path, checked.shape, str(checked.dtype),
                                    checked.chunks, checked.fill_missing)
    return da.from_array(checked, chunks=checked.chunks, name=name, lock=False, asarray=True,
                         meta=np.empty((0,) * checked.ndim, dtype=checked.dtype))


def as_dask_array(x: Any, what: str = "X", where: str | None = None, fill_missing: bool = False) -> da.Array:
    """Validate shape and dtype and return a Dask array whose chunks hold whole series.

    Channel or time axes split across chunks are merged (with a warning): every task needs whole
    series. Values (NaN/Inf) are checked later, chunk by chunk. A Zarr array is read through
    :class:`~rocketstream.storage.zarrstore.CheckedArray`: an absent chunk is an error unless
    ``fill_missing`` (``where`` names the input in that error).

    Parameters
    ----------
    x : array-like
        A CheckedArray, zarr.Array, Dask array or NumPy-like (n, channels, length) array.
    what : str, default "X"
        The input's name in messages.
    where : str, optional
        The Zarr input, for messages.
    fill_missing : bool, default False
        Read absent Zarr chunks as the fill value.

    Returns
    -------
    dask.array.Array
        Chunked along samples only.

    Raises
    ------
    InputError
        Not 3-D, no samples, fewer than 9 time points, or not real-valued.

    Warns
    -----
    UserWarning
        When the input is chunked along channels or time (it is rechunked).
    """
    if isinstance(x, CheckedArray):
        arr = from_checked(x)
    elif isinstance(x, zarr.Array):
        arr = from_checked(CheckedArray(x, where or f"zarr array {x.store_path}", fill_missing))
    elif isinstance(x, da.Array):
        arr = x
    else:
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            x = np.asarray(x)
        if getattr(x, "ndim", None) == 3:
            check_shape(tuple(x.shape), what)
            rows = default_chunk_size(int(x.shape[1]), int(x.shape[2]))
            arr = da.from_array(x, chunks=(rows, -1, -1))
        else:
            arr = da.from_array(x)
    check_dtype(arr.dtype, what)
    check_shape(tuple(arr.shape), what)
    if arr.shape[0] == 0:
        raise InputError(f"{what} has no samples (shape {tuple(arr.shape)}); give at least one series")
    if len(arr.chunks[1]) > 1 or len(arr.chunks[2]) > 1:
        split = [name for name, c in (("channel", arr.chunks[1]), ("time", arr.chunks[2])) if len(c) > 1]
        warnings.warn(
            f"{what} is chunked along {' and '.join(split)} ({arr.chunksize}); MiniRocket needs whole series "
            "per chunk, so it is rechunked to one chunk along those axes. Store the data chunked along "
            "samples only, e.g. chunks=(n, channels, length), to avoid this.",
            UserWarning,
            stacklevel=3,
        )
        arr = arr.rechunk({1: -1, 2: -1})
    return arr
