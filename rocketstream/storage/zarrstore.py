"""Open Zarr inputs (local paths or fsspec URLs) with clear errors, and read them without ever
mistaking an absent chunk for data.

Zarr returns the fill value for a chunk that is not in the store. For an input that means a lost or
never-written chunk, or a worker that opened another directory, silently becomes series of zeros.
:class:`CheckedArray` reads an input through its own getter that first checks that every stored
object the read touches exists (one ``stat``/``HEAD`` per chunk, on the process that reads), and
:func:`missing_chunks` lists the absent ones up front. Arrays written with empty chunks skipped
(``write_empty_chunks=False``) can be read with ``fill_missing=True``, which restores Zarr's semantics.
Sharded arrays are checked per shard.
"""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.errors
from zarr.core.sync import sync

from ..core.validation import InputError
from ..errors import MissingChunkError
from .locations import Location, is_url, redact, resolve

#: array config for everything rocketstream writes: every chunk is stored, even one that equals the fill
#: value (Zarr skips those by default), so that an absent chunk always means lost data
WRITE_ALL = {"write_empty_chunks": True}

FILL_HINT = ("if the array was written with empty chunks skipped, pass --fill-missing-chunks / "
             "fill_missing=True to read absent chunks as the fill value")


def describe_group(group: zarr.Group) -> str:
    """A short ``name (shape dtype)`` listing of the arrays in a group, for error messages.

    Parameters
    ----------
    group : zarr.Group

    Returns
    -------
    str
    """
    items = [f"{k} {tuple(a.shape)} {a.dtype}" for k, a in sorted(group.arrays())]
    return ", ".join(items) if items else "no arrays"


def _absolute(arr: zarr.Array) -> zarr.Array:
    """The same array with a local store rooted at an absolute path (a relative root would be
    resolved again in each worker's working directory)."""
    root = getattr(arr.store, "root", None)
    if root is None or Path(root).is_absolute():
        return arr
    store = type(arr.store)(os.path.realpath(root), read_only=True)
    return zarr.open_array(store=store, path=arr.path, mode="r")


class CheckedArray:
    """A read-only Zarr array whose reads raise :class:`MissingChunkError` for an absent chunk.

    Has ``shape``, ``dtype``, ``ndim`` and ``__getitem__`` for ``dask.array.from_array``; pickles
    with its (absolute) store, so the check runs where the read runs.

    Parameters
    ----------
    array : zarr.Array
        The input array (a local store with a relative root is re-rooted at its absolute path).
    where : str
        The input, for messages (credentials are removed).
    fill_missing : bool, default False
        Read absent chunks as the fill value (Zarr's own behaviour) instead of raising.

    Attributes
    ----------
    chunks : tuple of int
        The chunk shape, the unit a task reads.
    stored : tuple of int
        The unit the store holds: the shard shape of a sharded array, else ``chunks``.
    """

    def __init__(self, array: zarr.Array, where: str, fill_missing: bool = False) -> None:
        self.array = _absolute(array)
        self.where = redact(where)
        self.fill_missing = fill_missing
        self.shape = tuple(int(s) for s in self.array.shape)
        self.dtype = self.array.dtype
        self.ndim = len(self.shape)
        shards = getattr(self.array, "shards", None)
        self.chunks = tuple(int(c) for c in self.array.chunks)  # the unit a task reads
        self.stored = tuple(int(c) for c in (shards or self.array.chunks))  # the unit the store holds

    def _key(self, coords: tuple[int, ...]) -> str:
        key = self.array.metadata.encode_chunk_key(coords)
        return f"{self.array.path}/{key}" if self.array.path else key

    def _sample_range(self, coords: tuple[int, ...]) -> str:
        start = coords[0] * self.stored[0]
        return f"samples {start}-{min(start + self.stored[0], self.shape[0]) - 1}"

    def missing_error(self, coords: tuple[int, ...], n_missing: int = 1) -> MissingChunkError:
        """The error for the absent stored object at grid position ``coords``.

        Parameters
        ----------
        coords : tuple of int
            The object's position in the chunk (or shard) grid.
        n_missing : int, default 1
            How many are absent in all (named in the message when more than one).

        Returns
        -------
        MissingChunkError
        """
        more = f" ({n_missing} chunks are missing in all)" if n_missing > 1 else ""
        return MissingChunkError(
            f"chunk {self.array.metadata.encode_chunk_key(coords)} ({self._sample_range(coords)}) of the "
            f"input {self.where} is missing from its store{more}, so it would be read as the fill value: "
            f"restore the chunk (or check that every worker sees the same files); {FILL_HINT}")

    def check(self, key: Any) -> None:
        """Raise if a stored object the selection ``key`` touches is absent.

        Parameters
        ----------
        key : Any
            A selection of slices, integers or index arrays.

        Raises
        ------
        MissingChunkError
            A touched chunk (or shard) is absent, unless ``fill_missing``.
        """
        if self.fill_missing or 0 in self.shape:
            return
        key = key if isinstance(key, tuple) else (key,)
        ranges = []
        for axis, size in enumerate(self.shape):
            sel = key[axis] if axis < len(key) else slice(None)
            if isinstance(sel, slice):
                start, stop, _ = sel.indices(size)
            else:  # an integer or an index array
                idx = np.atleast_1d(np.asarray(sel, dtype=np.int64)) % size
                start, stop = int(idx.min()), int(idx.max()) + 1
            if stop <= start:
                return
            ranges.append(range(start // self.stored[axis], (stop - 1) // self.stored[axis] + 1))
        store = self.array.store
        for coords in product(*ranges):
            if not sync(store.exists(self._key(coords))):
                raise self.missing_error(coords)

    def __getitem__(self, key: Any) -> np.ndarray:
        self.check(key)
        return np.asarray(self.array[key])


def missing_chunks(arr: CheckedArray) -> list[tuple[int, ...]]:
    """The stored objects of ``arr`` that are absent (one listing of the store), in order.

    A store that cannot be listed (plain HTTP) gives ``[]``: its reads are still checked one by one.

    Parameters
    ----------
    arr : CheckedArray

    Returns
    -------
    list of tuple of int
        Grid positions of the absent chunks (or shards); ``[]`` with ``fill_missing``.
    """
    store = arr.array.store
    if arr.fill_missing or 0 in arr.shape or not getattr(store, "supports_listing", True):
        return []
    prefix = f"{arr.array.path}/" if arr.array.path else ""

    async def listing() -> set[str]:
        return {k async for k in store.list_prefix(prefix)}

    try:
        present = sync(listing())
    except (NotImplementedError, OSError, ValueError):  # a store without a usable listing
        return []
    grid = [range(-(-s // c)) for s, c in zip(arr.shape, arr.stored, strict=True)]
    return [coords for coords in product(*grid) if arr._key(coords) not in present]


def check_complete(arr: CheckedArray) -> None:
    """Raise :class:`MissingChunkError` (naming the first absent chunk) unless every chunk is stored.

    Parameters
    ----------
    arr : CheckedArray

    Raises
    ------
    MissingChunkError
        Some chunk is absent (and ``arr`` does not ``fill_missing``).
    """
    missing = missing_chunks(arr)
    if missing:
        raise arr.missing_error(missing[0], len(missing))


def open_input_array(
    source: str | os.PathLike | Location | zarr.Array | zarr.Group,
    variable: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> zarr.Array:
    """Open the input array: a Zarr array, or ``variable`` inside a Zarr group (path, URL or object).

    A group with a single 3-D array needs no ``variable``. Paths are resolved with
    :func:`~rocketstream.storage.locations.resolve` first.

    Parameters
    ----------
    source : str, os.PathLike, Location, zarr.Array or zarr.Group
        The input.
    variable : str, optional
        The array inside a group.
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    zarr.Array

    Raises
    ------
    FileNotFoundError
        Nothing at a local path, or no Zarr node there.
    InputError
        Not Zarr, a ``variable`` for a bare array, a group with no or several 3-D arrays and no
        ``variable``, or a ``variable`` that is missing or a group.
    """
    node: Any = source
    if isinstance(source, (str, os.PathLike, Location)):
        loc = resolve(source)
        where = loc.display
        if not loc.url and not os.path.exists(loc.target):
            raise FileNotFoundError(f"input not found: {where}; give a Zarr store path or an fsspec URL")
        try:
            node = zarr.open(loc.target, mode="r", storage_options=storage_options if loc.url else None,
                             use_consolidated=False)
        except (FileNotFoundError, KeyError):
            raise FileNotFoundError(f"no Zarr array or group at {where}") from None
        except Exception as exc:
            raise InputError(f"cannot open {where} as Zarr ({type(exc).__name__}: {redact(str(exc))}); "
                             "the input must be a Zarr array or group") from exc
    else:
        where = repr(source)
    if isinstance(node, zarr.Array):
        if variable is not None:
            raise InputError(f"{where} is a single Zarr array, not a group: drop --variable/variable=")
        return node
    if not isinstance(node, zarr.Group):
        raise InputError(f"expected a Zarr array or group, got {type(node).__name__}")
    if variable is None:
        candidates = [k for k, a in node.arrays() if a.ndim == 3]
        made = (dict(node.attrs).get("rocketstream") or {}).get("format")
        if not candidates and made in ("rocketstream.features", "rocketstream.predictions"):
            kind = made.split(".")[1]
            use = ("train a head on them with `rocketstream train`" if kind == "features" else
                   "score them with `rocketstream evaluate`")
            raise InputError(f"{where} is a rocketstream {kind} store, not (sample, channel, time) series; "
                             f"give the series it was made from, or {use}")
        if len(candidates) != 1:
            raise InputError(f"{where} is a Zarr group holding {describe_group(node)}; "
                             "name the (sample, channel, time) array with --variable/variable=")
        variable = candidates[0]
    try:
        arr = node[variable]
    except KeyError:
        raise InputError(f"variable {variable!r} not found in {where}; "
                         f"it holds {describe_group(node)}") from None
    if not isinstance(arr, zarr.Array):
        raise InputError(f"{variable!r} in {where} is a group, not an array; name an array inside it")
    return arr


def read_checked(arr: zarr.Array, where: str, fill_missing: bool = False) -> np.ndarray:
    """All of a (small) Zarr array, e.g. lengths or labels, refusing absent chunks.

    Parameters
    ----------
    arr : zarr.Array
        The array to read whole.
    where : str
        The array, for messages.
    fill_missing : bool, default False
        Read absent chunks as the fill value.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    MissingChunkError
        A chunk is absent and ``fill_missing`` is false.
    """
    checked = CheckedArray(arr, where, fill_missing)
    return checked[...] if checked.ndim == 0 else checked[tuple(slice(None) for _ in checked.shape)]


def dims_of(arr: zarr.Array) -> tuple[str, ...] | None:
    """The dimension names of an array (Zarr 3 ``dimension_names``, or xarray's Zarr 2 attribute)."""
    names = getattr(arr.metadata, "dimension_names", None)
    if names is None:
        names = arr.attrs.get("_ARRAY_DIMENSIONS")
    return tuple(str(n) for n in names) if names is not None else None


def parent_group(arr: zarr.Array) -> zarr.Group | None:
    """The group that holds ``arr`` (None for an array at the root of its store)."""
    path = arr.path.strip("/")
    if not path:
        return None
    try:
        return zarr.open_group(store=arr.store, path=path.rpartition("/")[0], mode="r",
                               use_consolidated=False)
    except (FileNotFoundError, zarr.errors.BaseZarrError):
        return None


def recorded_task(arr: zarr.Array) -> str | None:
    """The task (``classification``/``regression``) recorded in the attributes of ``arr``'s group,
    as ``rocketstream ingest`` writes it; None when there is none."""
    group = parent_group(arr)
    attrs = dict(group.attrs) if group is not None else {}
    task = attrs.get("task", (attrs.get("rocketstream_ingest") or {}).get("task"))
    return task if task in ("classification", "regression") else None


def plain_strings(values: Any) -> np.ndarray:
    """``values`` as plain NumPy, with text as fixed-width ``<U``: Zarr 3 reads text back as NumPy's
    ``StringDType`` (which scikit-learn and ``astype(str)`` do not accept), object or bytes arrays;
    everything else is returned as it is.

    Parameters
    ----------
    values : array-like

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.storage.zarrstore import plain_strings
    >>> plain_strings(np.array(["a", "bb"], dtype=object)).dtype
    dtype('<U2')
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "TS" or (arr.dtype.kind == "O" and arr.size and all(
            isinstance(v, (str, bytes)) for v in arr.ravel().tolist())):
        text = [v.decode() if isinstance(v, bytes) else str(v) for v in arr.ravel().tolist()]
        return np.array(text, dtype=str).reshape(arr.shape)
    return arr


def dim_arrays(group: zarr.Group, sizes: dict[str, int], where: str, fill_missing: bool = False,
               skip: tuple[str, ...] = ()) -> dict[str, tuple[str, np.ndarray]]:
    """The 1-D arrays of ``group`` along one of the dimensions of ``sizes`` (by dimension name, with
    that dimension's size), read whole and checked, text as ``<U``: the coordinates xarray would give.

    Parameters
    ----------
    group : zarr.Group
    sizes : dict of str to int
        Dimension name -> size, e.g. ``{"sample": n}``.
    where : str
        The group, for messages.
    fill_missing : bool, default False
        Read absent chunks as the fill value.
    skip : tuple of str
        Array names to leave out.

    Returns
    -------
    dict
        ``name -> (dimension, values)`` (numeric, boolean or ``<U`` values only).

    Raises
    ------
    MissingChunkError
        A chunk of one of those arrays is absent and ``fill_missing`` is false.
    """
    out = {}
    for key, node in sorted(group.arrays()):
        dims = dims_of(node)
        if key in skip or node.ndim != 1 or not dims or sizes.get(dims[0]) != node.shape[0]:
            continue
        values = plain_strings(read_checked(node, f"{key!r} of {where}", fill_missing))
        if values.dtype.kind in "iufbU":
            out[str(key)] = (dims[0], values)
    return out


def sample_arrays(arr: zarr.Array, where: str, fill_missing: bool = False) -> dict[str, np.ndarray]:
    """The per-sample arrays beside ``arr`` in its group (``label``, ``sample``, ``length``...; see
    :func:`dim_arrays`); empty for an array that is not in a group.

    Parameters
    ----------
    arr : zarr.Array
        The input data, (sample, ...).
    where : str
        The input, for messages.
    fill_missing : bool, default False
        Read absent chunks as the fill value.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    MissingChunkError
        A chunk of one of those arrays is absent and ``fill_missing`` is false.
    """
    group = parent_group(arr)
    if group is None:
        return {}
    name = arr.path.strip("/").rpartition("/")[2]
    found = dim_arrays(group, {"sample": int(arr.shape[0])}, f"the group of {where}", fill_missing, (name,))
    return {k: v for k, (_, v) in found.items()}


__all__ = ["CheckedArray", "check_complete", "describe_group", "dim_arrays", "dims_of", "is_url",
           "missing_chunks", "open_input_array", "parent_group", "plain_strings", "read_checked",
           "recorded_task", "sample_arrays"]
