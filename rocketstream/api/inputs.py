"""Inputs resolved once, on the client: any supported source (a Zarr path or URL, a zarr array or
group, an xarray object, a ``.npy`` file, a Dask or NumPy array) becomes a validated (sample, channel,
time) input (a :class:`~rocketstream.graph.source.RowSource` for Zarr, which the tasks read themselves;
else a Dask array), with the identity that stores record, and the per-series lengths of
unequal-length data."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..core.validation import InputError
from ..graph.source import RowSource, as_dask_array
from ..storage.locations import Location, resolve
from ..storage.zarrstore import (
    CheckedArray,
    check_complete,
    open_input_array,
    plain_strings,
    read_checked,
    recorded_task,
    sample_arrays,
)

if TYPE_CHECKING:
    import dask.array as da

DIMS = ("sample", "channel", "time")

Source = Any  # path/URL, zarr.Array/Group, xarray.DataArray/Dataset, dask or NumPy array


def rocketstream_version() -> str:
    from .. import __version__

    return __version__


def xarray_input(obj: Any, variable: str | None) -> tuple[Any, str]:
    """The (sample, channel, time) DataArray of a DataArray or Dataset, transposed to that order.

    A univariate (sample, time) array gets a ``channel`` dimension of size 1 (a scalar ``channel``
    coordinate, as ``da.sel(channel=...)`` leaves, becomes its coordinate). Coordinates along
    ``sample`` holding strings as NumPy StringDType or object (what Zarr v3 reads back) become
    fixed-width ``<U`` strings, so that they can be stored and grouped on.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The input.
    variable : str or None
        The Dataset's variable (None: its only (sample, channel, time) or (sample, time) variable);
        for a DataArray, its name if given.

    Returns
    -------
    data : xarray.DataArray
        Dims exactly ``("sample", "channel", "time")``.
    name : str
        The variable's name, or ``"<DataArray>"``.

    Raises
    ------
    InputError
        A missing or ambiguous variable, or dims other than (sample, channel, time) or (sample, time).
    """
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        if variable is None:
            found = [k for k, v in obj.data_vars.items() if v.ndim == 3 or set(v.dims) == {"sample", "time"}]
            if len(found) != 1:
                raise InputError(f"the Dataset has variables {list(obj.data_vars)}; name the "
                                 "(sample, channel, time) or (sample, time) one with variable=")
            variable = str(found[0])
        if variable not in obj.data_vars:
            raise InputError(f"variable {variable!r} not in the Dataset; it has {list(obj.data_vars)}")
        obj = obj[variable]
    elif variable is not None and obj.name != variable:
        raise InputError(f"variable={variable!r} was given but the input is the DataArray {obj.name!r}")
    if obj.ndim == 2 and set(obj.dims) == {"sample", "time"}:
        obj = obj.expand_dims("channel")  # univariate: one channel
    missing = [d for d in DIMS if d not in obj.dims]
    if missing or obj.ndim != 3:
        raise InputError(f"the DataArray has dims {obj.dims}; expected {DIMS}, or (sample, time) for "
                         "univariate series (rename them, e.g. da.rename(dim_0='sample', ...))")
    obj = obj.transpose(*DIMS)
    strings = {key: ("sample", plain_strings(coord.values)) for key, coord in obj.coords.items()
               if coord.dims == ("sample",) and coord.dtype.kind in "TO"}
    if strings:
        obj = obj.assign_coords(strings)
    return obj, str(obj.name) if obj.name is not None else "<DataArray>"


class Resolved:
    """An input resolved once on the client: the validated data and what identifies it.

    Parameters
    ----------
    data : RowSource or dask.array.Array
        The validated (sample, channel, time) input: a Zarr input as a RowSource (each task reads its
        rows), anything else as a Dask array.
    desc : dict
        ``source`` (credentials removed) and ``variable``, for provenance.
    xobj : xarray.DataArray or None
        The transposed DataArray of an xarray input (its sample coordinates are kept).
    location : Location or None
        Where a path input lives (for the overlap check).
    checked : CheckedArray or None
        The reader of a Zarr input.

    Attributes
    ----------
    shape, dtype, chunks
        The data's (``chunks`` Dask-style).
    """

    def __init__(self, data: RowSource | da.Array, desc: dict[str, Any], xobj: Any, location: Location | None,
                 checked: CheckedArray | None) -> None:
        self.data, self.desc, self.xobj, self.location, self.checked = data, desc, xobj, location, checked
        self.shape, self.dtype, self.chunks = tuple(int(s) for s in data.shape), data.dtype, data.chunks
        self._arr: da.Array | None = None if isinstance(data, RowSource) else data

    @property
    def arr(self) -> da.Array:
        """The input as a Dask array (made on first use for a Zarr input)."""
        if self._arr is None:
            self._arr = as_dask_array(self.data)
        return self._arr

    @property
    def identity(self) -> dict[str, Any]:
        """Location (credentials removed), variable, shape, chunking and dtype of the input."""
        return {"location": self.desc["source"], "variable": self.desc.get("variable"),
                "shape": list(self.shape), "chunks": [int(c) for c in self.chunks[0][:1]],
                "dtype": str(self.dtype)}

    def sample_coords(self) -> dict[str, np.ndarray]:
        """The input's per-sample coordinates (``sample``, ``label``, ``length``...) as NumPy arrays
        (strings as fixed-width unicode): an xarray input's coordinates along ``sample``, or the 1-D
        ``sample`` arrays beside a Zarr input in its group (what ``rocketstream ingest`` writes).

        Raises
        ------
        MissingChunkError
            A chunk of a Zarr coordinate is absent (and ``fill_missing`` was not given).
        """
        if self.xobj is not None:
            found = {str(k): plain_strings(c.values) for k, c in self.xobj.coords.items()
                     if c.dims == ("sample",)}
            return {k: v for k, v in found.items() if v.dtype.kind in "iufbU"}
        if self.checked is not None:
            return sample_arrays(self.checked.array, self.checked.where, self.checked.fill_missing)
        return {}

    def recorded_task(self) -> str | None:
        """The task recorded with the input (``rocketstream ingest`` writes it in the store's
        attributes; an xarray input's ``task`` attribute), or None."""
        if self.xobj is not None:
            task = self.xobj.attrs.get("task")
            return task if task in ("classification", "regression") else None
        return recorded_task(self.checked.array) if self.checked is not None else None

    def check_complete(self) -> None:
        """Refuse a Zarr input with absent chunks (one listing of its store) before any output is made.

        Raises
        ------
        MissingChunkError
            A chunk is absent (and ``fill_missing`` was not given).
        """
        if self.checked is not None:
            check_complete(self.checked)


def resolve_input(source: Source, variable: str | None, storage_options: dict[str, Any] | None = None,
             fill_missing: bool = False) -> Resolved:
    """Open ``source`` once on the client: paths become absolute locations, Zarr arrays are read
    through :class:`CheckedArray` (an absent chunk is an error unless ``fill_missing``)."""
    xr = sys.modules.get("xarray")  # an xarray object means xarray is loaded: no import for the others
    xobj, loc, checked = None, None, None
    if xr is not None and isinstance(source, (xr.DataArray, xr.Dataset)):
        xobj, name = xarray_input(source, variable)
        data = xobj.data
        desc = {"source": f"xarray:{name}", "variable": variable or name}
    elif isinstance(source, (str, os.PathLike)) and str(source).endswith(".npy"):
        loc = resolve(source)
        try:
            data = np.load(loc.target, mmap_mode="r")
        except FileNotFoundError:
            raise FileNotFoundError(f"input not found: {loc.display}") from None
        except ValueError as exc:
            raise InputError(f"cannot read {loc.display} as a .npy array ({exc})") from exc
        desc = {"source": loc.display, "variable": None}
    elif isinstance(source, (str, os.PathLike, zarr.Group)) or (
            isinstance(source, zarr.Array) and variable is not None):
        if isinstance(source, (str, os.PathLike)):
            loc = resolve(source)
        data = open_input_array(loc or source, variable, storage_options)
        where = loc.display if loc is not None else f"zarr:{data.store_path}"
        checked = CheckedArray(data, where, fill_missing)
        data = checked
        desc = {"source": where, "variable": variable}
    elif isinstance(source, zarr.Array):
        checked = CheckedArray(source, f"zarr:{source.store_path}", fill_missing)
        data = checked
        desc = {"source": checked.where, "variable": None}
    else:
        if variable is not None:
            raise InputError(f"variable={variable!r} only applies to Zarr groups and xarray Datasets")
        data = source
        desc = {"source": f"<{type(source).__module__}.{type(source).__name__}>", "variable": None}
    return Resolved(RowSource(checked) if data is checked else as_dask_array(data), desc, xobj, loc, checked)


Lengths = Any  # None (look for a ``length`` variable beside the data), False (ignore), or an array


def resolve_lengths(source: Source, lengths: Lengths, n: int, length: int,
                    storage_options: dict[str, Any] | None = None) -> np.ndarray | None:
    """Per-series lengths of an unequal-length dataset stored padded, or None if all are full.

    Parameters
    ----------
    source : Any
        The input, as given to :func:`fit` (where a stored ``length`` variable is looked for).
    lengths : None, False or array-like
        ``None`` uses a 1-D ``length`` variable stored beside the data (as ``rocketstream ingest``
        writes) in an xarray Dataset or a Zarr group; ``False`` ignores it; an array is used as given.
    n : int
        Number of samples.
    length : int
        The stored (padded) length.
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    numpy.ndarray or None
        int64 (n,) lengths, or None when every series has the stored length (or none are known).

    Raises
    ------
    InputError
        Lengths that are not ``n`` integers between 1 and ``length``.
    MissingChunkError
        A chunk of the stored ``length`` array is absent.
    """
    if lengths is False:
        return None
    if lengths is None:
        lengths = _stored_lengths(source, storage_options)
        if lengths is None:
            return None
    out = np.asarray(lengths)
    if out.dtype.kind not in "iu" or out.shape != (n,):
        raise InputError(f"lengths must be {n} integers (one per sample), got {out.dtype} shape {out.shape}")
    if (out < 1).any() or (out > length).any():
        raise InputError(f"lengths must lie between 1 and the stored length {length}")
    return None if (out == length).all() else out.astype(np.int64)


def _stored_lengths(source: Source, storage_options: dict[str, Any] | None) -> np.ndarray | None:
    xr = sys.modules.get("xarray")
    if xr is not None and isinstance(source, xr.Dataset):
        var = source.variables.get("length")
        return None if var is None or var.dims != ("sample",) else np.asarray(var.values)
    if isinstance(source, (str, os.PathLike, zarr.Group)) and not str(source).endswith(".npy"):
        try:
            group = source if isinstance(source, zarr.Group) else zarr.open_group(
                resolve(source).target, mode="r", storage_options=storage_options, use_consolidated=False)
        except Exception:  # not a group (a bare array): no lengths
            return None
        if "length" in group and isinstance(group["length"], zarr.Array) and group["length"].ndim == 1:
            return read_checked(group["length"], f"the 'length' array of {resolve(str(source)).display}"
                                if isinstance(source, (str, os.PathLike)) else "the 'length' array")
    return None


def open_source(source: Source, variable: str | None = None, *,
                storage_options: dict[str, Any] | None = None, fill_missing: bool = False) -> da.Array:
    """Open any supported input as a validated (sample, channel, time) Dask array.

    Chunks hold whole series (time and channels are merged with a warning). Nothing is read yet; reading
    an absent chunk of a Zarr input raises :class:`~rocketstream.errors.MissingChunkError` unless
    ``fill_missing``.

    Parameters
    ----------
    source : Any
        A Zarr path or fsspec URL, a zarr Array or Group, an xarray DataArray/Dataset with dims
        (sample, channel, time), a ``.npy`` file, or a Dask/NumPy array.
    variable : str, optional
        The array inside a Zarr group or the variable of a Dataset (needed when there are several 3-D ones).
    storage_options : dict, optional
        fsspec options for a URL.
    fill_missing : bool, default False
        Read absent Zarr chunks as the fill value.

    Returns
    -------
    dask.array.Array
        (sample, channel, time), chunked along samples only.

    Raises
    ------
    FileNotFoundError
        Nothing at the path.
    InputError
        Not readable as (sample, channel, time) real numbers with length >= 9, or a bad ``variable``.

    Warns
    -----
    UserWarning
        When the input is chunked along channels or time (it is rechunked).

    Examples
    --------
    >>> from rocketstream.api.outofcore import open_source
    >>> from rocketstream.synthetic import make_series, write_zarr
    >>> path = write_zarr("data.zarr", make_series(1000, 3, 200), chunk_rows=250, group_var="X")
    >>> arr = open_source(path, variable="X")
    >>> arr.shape, arr.chunks[0]
    ((1000, 3, 200), (250, 250, 250, 250))
    """
    return resolve_input(source, variable, storage_options, fill_missing).arr


def same_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality of two coordinate arrays, NaN equal to NaN (text compared as text).

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of the same length.

    Returns
    -------
    numpy.ndarray
        bool, one per element.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "US" or b.dtype.kind in "US":
        return a.astype(str) == b.astype(str)
    eq = a == b
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        eq |= np.isnan(a) & np.isnan(b)
    return np.asarray(eq, dtype=bool)


def coords_for_store(store: Any, values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The input's per-sample coordinates that ``store`` carries, under their names in the store and cut
    to ``n`` rows; refuses when one is missing or shorter (not yet written).

    Parameters
    ----------
    store : ChunkStore
        The store (its :meth:`~rocketstream.storage.chunkstore.ChunkStore.sample_coord_names`).
    values : dict of str to numpy.ndarray
        Input name -> values, as :meth:`Resolved.sample_coords` gives.
    n : int
        Rows wanted.

    Returns
    -------
    dict of str to numpy.ndarray
        Store name -> ``n`` values.

    Raises
    ------
    InputError
        A coordinate the store carries is missing from the input, or has fewer than ``n`` rows.
    """
    out = {}
    for name, stored_as in store.sample_coord_names().items():
        v = values.get(name)
        if v is None or len(v) < n:
            have = "is missing (or has not as many rows as the data)" if v is None else f"has {len(v)} rows"
            raise InputError(f"the input's per-sample coordinate {name!r} {have}, but {store.display} "
                             f"carries it and the input has {n} samples: finish writing the input (every "
                             "per-sample array grown together), then append")
        out[stored_as] = np.asarray(v)[:n]
    return out


def _done_rows(store: Any, lo: int, hi: int) -> np.ndarray:
    """bool per row of ``lo:hi``: whether its chunk is done."""
    done = store.done()
    rows = np.zeros(max(0, hi - lo), dtype=bool)
    for k in np.flatnonzero(done):
        a, b = store.bounds(int(k))
        a, b = max(a, lo), min(b, hi)
        if b > a:
            rows[a - lo : b - lo] = True
    return rows


def check_old_coords(store: Any, values: dict[str, np.ndarray], lo: int = 0, hi: int | None = None) -> None:
    """Refuse when a per-sample coordinate of the rows ``lo:hi`` of ``store`` whose chunk is done differs
    from ``values`` (store name -> the input's values from row 0): appending needs the old rows unchanged.

    Parameters
    ----------
    store : ChunkStore
        The store.
    values : dict of str to numpy.ndarray
        Store name -> the input's values (at least ``hi`` rows).
    lo, hi : int
        Rows to compare (default all the store holds).

    Raises
    ------
    IdentityMismatchError
        A value differs (the message names the coordinate and the sample).
    """
    from ..errors import IdentityMismatchError

    hi = store.n_samples if hi is None else hi
    if hi <= lo or not values:
        return
    stored = store.read_coords(list(values), lo, hi)
    done = _done_rows(store, lo, hi)
    for name, old in stored.items():
        same = same_values(old, np.asarray(values[name])[lo:hi]) | ~done
        if not same.all():
            i = lo + int(np.flatnonzero(~same)[0])
            raise IdentityMismatchError(
                f"the input's per-sample coordinate {name!r} of sample {i} is {values[name][i]!r}, but "
                f"{store.display} recorded {old[i - lo]!r}: append needs the old rows unchanged; restore "
                "them, or use overwrite=True / --overwrite to start over")


def sync_pending_coords(store: Any, values: dict[str, np.ndarray]) -> int:
    """Write the input's per-sample coordinates into the rows of ``store`` whose chunk is not done
    (a follower may have stored them before they landed), before those chunks are computed.

    Parameters
    ----------
    store : ChunkStore
        The store.
    values : dict of str to numpy.ndarray
        Store name -> the input's values, from row 0 (at least the store's rows).

    Returns
    -------
    int
        Coordinate values rewritten.
    """
    n = store.n_samples
    pending = ~_done_rows(store, 0, n)
    if not pending.any() or not values:
        return 0
    lo = int(np.flatnonzero(pending)[0])
    stored = store.read_coords(list(values), lo, n)
    writes, count = {}, 0
    for name, old in stored.items():
        new = plain_strings(np.asarray(values[name])[lo:n])
        change = pending[lo:] & ~same_values(old, new)
        if change.any():
            merged = old.astype(object) if old.dtype.kind == "U" else old.copy()
            merged[change] = new[change]
            writes[name] = plain_strings(merged)
            count += int(change.sum())
    if writes:
        store.write_coords(writes, lo)
    return count


def sync_input_coords(store: Any, src: Resolved) -> int:
    """:func:`sync_pending_coords` from the input ``src`` as it is (for resume: the coordinates it
    holds for all the store's rows; others are left as they are).

    Parameters
    ----------
    store : ChunkStore
        The store being resumed.
    src : Resolved
        Its input.

    Returns
    -------
    int
        Coordinate values rewritten.
    """
    if store.done().all():
        return 0
    found = src.sample_coords()
    values = {stored_as: np.asarray(found[name]) for name, stored_as in store.sample_coord_names().items()
              if name in found and len(found[name]) >= store.n_samples}
    return sync_pending_coords(store, values)


def grow_to_input(job: Any, src: Resolved, n: int | None = None, values: dict[str, np.ndarray] | None = None,
                  *, target: Any = None, workers: int | None = None, verify: bool = True,
                  check_coords: bool = True) -> bool:
    """Grow ``job.store`` to the first ``n`` rows of the input ``src`` (all by default): the per-sample
    coordinates are extended, the old rows checked (coordinates here, input digests by
    :func:`~rocketstream.graph.runner.grow`), nothing written when a check fails.

    Parameters
    ----------
    job : ChunkJob
        The chunk job over ``src`` (its ``store`` is grown).
    src : Resolved
        The grown input.
    n : int, optional
        Rows to grow to (default: all of ``src``).
    values : dict of str to numpy.ndarray, optional
        Store name -> at least ``n`` coordinate values (default: read from ``src``, all rows required).
    target, workers, verify
        As for :func:`~rocketstream.graph.runner.grow`.
    check_coords : bool, default True
        Compare the coordinates of the old rows with the input's.

    Returns
    -------
    bool
        Whether the store changed.

    Raises
    ------
    IdentityMismatchError
        The old rows (their values or coordinates) changed.
    InputError
        A per-sample coordinate the store carries is missing or shorter than the data.
    """
    from ..graph.runner import grow

    store = job.store
    n = src.shape[0] if n is None else int(n)
    if values is None:
        values = coords_for_store(store, src.sample_coords(), n)
    old = store.n_samples
    if check_coords and (n > old or store.resizing):
        check_old_coords(store, values, 0, old)
    identity = {**src.identity, "shape": [n, *src.identity["shape"][1:]]}
    grew = grow(job, n, identity=identity, new_coords={k: np.asarray(v)[old:n] for k, v in values.items()},
                target=target, workers=workers, verify=verify)
    if check_coords:  # rows of chunks not done may hold coordinates a follower stored before they landed
        sync_pending_coords(store, values)
    return grew


REFIT_PAD_SHORT = ("the model was fitted without --pad-short; refit it with `rocketstream fit ... "
                   "--pad-short` / pad_short=True and use the new model, or drop those series")


def model_lengths(source: Source, params: Any, arr: RowSource | da.Array, lengths: Lengths,
                  storage_options: dict[str, Any] | None = None) -> np.ndarray | None:
    """The per-series lengths a model needs (None for a fixed-length model, which takes the stored
    arrays as they are), checked against the model's short-series rule before anything is written.

    Parameters
    ----------
    source : Source
        The input (where a ``length`` variable may be found).
    params : MiniRocketParameters
        The model.
    arr : RowSource or dask.array.Array
        The resolved input (its shape is used).
    lengths : None, False or array-like
        See :func:`resolve_lengths`.
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    numpy.ndarray or None

    Raises
    ------
    InputError
        Lengths for a fixed-length model, bad lengths, or series shorter than 9 points that the model
        was not fitted to pad.
    """
    from ..core.variable import check_short

    if not params.variable_length:
        if lengths is not None and lengths is not False:
            raise InputError("lengths were given but the model was fitted for equal lengths; fit it on the "
                             "unequal-length data (with its lengths) first")
        return None
    n, _, length = (int(s) for s in arr.shape)
    own = resolve_lengths(source, lengths, n, length, storage_options)
    check_short(own, bool(params.extra.get("pad_short", False)), REFIT_PAD_SHORT)
    return own
