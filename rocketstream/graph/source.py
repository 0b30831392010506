"""Turn an array-like (Zarr, Dask, NumPy) into a validated input chunked along samples only: a Dask
array, or for a Zarr input a :class:`RowSource` that the tasks read themselves (no Dask array, so a
local command does not import ``dask.array`` and what it pulls in: xarray, pandas, SciPy)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from dask.base import tokenize

from ..config import TASK_CHUNK_BYTES
from ..core.validation import InputError, check_dtype, check_shape
from ..storage.zarrstore import CheckedArray

if TYPE_CHECKING:
    import dask.array as da

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
    import dask.array as da

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
        A CheckedArray, RowSource, zarr.Array, Dask array or NumPy-like (n, channels, length) array.
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
    import dask.array as da

    if isinstance(x, CheckedArray):
        arr = from_checked(x)
    elif isinstance(x, zarr.Array):
        arr = from_checked(CheckedArray(x, where or f"zarr array {x.store_path}", fill_missing))
    elif isinstance(x, RowSource):  # checked (and warned about) already
        arr = from_checked(x.checked)
        return arr.rechunk({1: -1, 2: -1}) if len(arr.chunks[1]) > 1 or len(arr.chunks[2]) > 1 else arr
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
    if check_input(arr.shape, arr.dtype, arr.chunks, arr.chunksize, what):
        arr = arr.rechunk({1: -1, 2: -1})
    return arr


def check_input(shape: tuple[int, ...], dtype: Any, chunks: tuple[tuple[int, ...], ...],
                chunksize: tuple[int, ...], what: str = "X", stacklevel: int = 4) -> bool:
    """Refuse an input that MiniRocket cannot take; warn when it is chunked along channels or time.

    Parameters
    ----------
    shape, dtype
        The input's.
    chunks : tuple of tuple of int
        Dask-style chunking (the sizes along each axis).
    chunksize : tuple of int
        The largest chunk (for the warning).
    what : str, default "X"
        The input's name in messages.
    stacklevel : int, default 4
        Of the warning.

    Returns
    -------
    bool
        Whether the input is split along channels or time (its readers must merge them).

    Raises
    ------
    InputError
        Not 3-D, no samples, fewer than 9 time points, or not real-valued.
    """
    check_dtype(dtype, what)
    check_shape(tuple(shape), what)
    if shape[0] == 0:
        raise InputError(f"{what} has no samples (shape {tuple(shape)}); give at least one series")
    if len(chunks[1]) > 1 or len(chunks[2]) > 1:
        split = [name for name, c in (("channel", chunks[1]), ("time", chunks[2])) if len(c) > 1]
        warnings.warn(
            f"{what} is chunked along {' and '.join(split)} ({tuple(chunksize)}); MiniRocket needs whole "
            "series per chunk, so it is rechunked to one chunk along those axes. Store the data chunked "
            "along samples only, e.g. chunks=(n, channels, length), to avoid this.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return True
    return False


def _grid(n: int, step: int) -> tuple[int, ...]:
    return tuple(min(step, n - a) for a in range(0, n, step)) if n else (0,)


class RowSource:
    """A Zarr input that each task reads itself, whole series from a row range, through its
    :class:`~rocketstream.storage.zarrstore.CheckedArray` (an absent chunk is an error unless
    ``fill_missing``): what the chunk runner and the fit need of an input (shape, dtype, chunking along
    samples, a name) without a Dask array. Calling it with ``(lo, hi)`` gives those rows; it pickles
    (a task on a cluster reads its own rows).

    Parameters
    ----------
    checked : CheckedArray
        The Zarr input.
    what : str, default "X"
        The input's name in messages.

    Attributes
    ----------
    shape, dtype, ndim
        The input's.
    chunks : tuple of tuple of int
        Dask-style: the Zarr chunking along samples, whole series along channels and time.
    name : str
        A deterministic token of the input (for task names).

    Raises
    ------
    InputError
        As :func:`check_input`.
    """

    def __init__(self, checked: CheckedArray, what: str = "X") -> None:
        self.checked = checked
        self.shape, self.dtype, self.ndim = tuple(checked.shape), checked.dtype, checked.ndim
        grid = tuple(_grid(int(n), int(c)) for n, c in zip(checked.shape, checked.chunks, strict=True))
        check_input(self.shape, self.dtype, grid, checked.chunks, what, stacklevel=5)
        self.chunks = (grid[0], *((int(n),) for n in self.shape[1:]))
        self.name = "zarr-rows-" + tokenize(checked.where, checked.array.path, checked.shape,
                                            str(checked.dtype), checked.chunks, checked.fill_missing)

    def __dask_tokenize__(self) -> str:
        return self.name

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo`` to ``hi`` (whole series), as stored."""
        return self.checked[lo:hi]
