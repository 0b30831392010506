"""Out-of-core MiniRocket: fit from the drawn rows of a large array, transform chunk by chunk into
a Zarr features store (resumable, bitwise identical on any scheduler)."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

import dask.array as da
import numpy as np
import torch
import zarr

from ..core.parameters import MiniRocketParameters
from ..core.serialization import ModelFileError, from_dict, to_dict
from ..core.serialization import load as load_model
from ..core.validation import InputError, check_against_model
from ..errors import ClusterLostError, IdentityMismatchError, PreflightError, StoreError
from ..graph.fit import fit_array, fit_array_variable
from ..graph.preflight import check_resources, device_problem
from ..graph.runner import chunk_graph, damaged_chunks, missing_chunks, run
from ..graph.schedule import is_local, session
from ..graph.source import as_dask_array, default_chunk_size
from ..graph.transform import features_job
from ..storage.features import ATTR, MARKERS, FeatureStore
from ..storage.locations import Location, check_outputs, resolve
from ..storage.lock import StoreLock
from ..storage.outputs import existing_output
from ..storage.zarrstore import CheckedArray, check_complete, open_input_array, read_checked

log = logging.getLogger("rocketstream")

DIMS = ("sample", "channel", "time")
#: Feature coordinates written next to the features (from ``params.feature_table()``).
FEATURE_COORDS = ("dilation", "dilation_index", "kernel", "quantile_index", "padded", "combination")


Source = Any  # path/URL, zarr.Array/Group, xarray.DataArray/Dataset, dask or NumPy array


def _version() -> str:
    from .. import __version__

    return __version__


def _xarray_array(obj: Any, variable: str | None) -> tuple[Any, str]:
    """The (sample, channel, time) DataArray of a DataArray or Dataset, transposed to that order."""
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        if variable is None:
            three = [k for k, v in obj.data_vars.items() if v.ndim == 3]
            if len(three) != 1:
                raise InputError(f"the Dataset has variables {list(obj.data_vars)}; name the "
                                 "(sample, channel, time) one with variable=")
            variable = str(three[0])
        if variable not in obj.data_vars:
            raise InputError(f"variable {variable!r} not in the Dataset; it has {list(obj.data_vars)}")
        obj = obj[variable]
    elif variable is not None and obj.name != variable:
        raise InputError(f"variable={variable!r} was given but the input is the DataArray {obj.name!r}")
    missing = [d for d in DIMS if d not in obj.dims]
    if missing or obj.ndim != 3:
        raise InputError(f"the DataArray has dims {obj.dims}; expected {DIMS} "
                         "(rename them, e.g. da.rename(dim_0='sample', ...))")
    return obj.transpose(*DIMS), str(obj.name) if obj.name is not None else "<DataArray>"


class Resolved:
    """An input resolved once on the client: the validated Dask array and what identifies it.

    Parameters
    ----------
    arr : dask.array.Array
        The validated (sample, channel, time) array.
    desc : dict
        ``source`` (credentials removed) and ``variable``, for provenance.
    xobj : xarray.DataArray or None
        The transposed DataArray of an xarray input (its sample coordinates are kept).
    location : Location or None
        Where a path input lives (for the overlap check).
    checked : CheckedArray or None
        The reader of a Zarr input.
    """

    def __init__(self, arr: da.Array, desc: dict[str, Any], xobj: Any, location: Location | None,
                 checked: CheckedArray | None) -> None:
        self.arr, self.desc, self.xobj, self.location, self.checked = arr, desc, xobj, location, checked

    @property
    def identity(self) -> dict[str, Any]:
        """Location (credentials removed), variable, shape, chunking and dtype of the input."""
        return {"location": self.desc["source"], "variable": self.desc.get("variable"),
                "shape": [int(s) for s in self.arr.shape], "chunks": [int(c) for c in self.arr.chunks[0][:1]],
                "dtype": str(self.arr.dtype)}

    def check_complete(self) -> None:
        """Refuse a Zarr input with absent chunks (one listing of its store) before any output is made.

        Raises
        ------
        MissingChunkError
            A chunk is absent (and ``fill_missing`` was not given).
        """
        if self.checked is not None:
            check_complete(self.checked)


def _resolve(source: Source, variable: str | None, storage_options: dict[str, Any] | None = None,
             fill_missing: bool = False) -> Resolved:
    """Open ``source`` once on the client: paths become absolute locations, Zarr arrays are read
    through :class:`CheckedArray` (an absent chunk is an error unless ``fill_missing``)."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    xobj, loc, checked = None, None, None
    if xr is not None and isinstance(source, (xr.DataArray, xr.Dataset)):
        xobj, name = _xarray_array(source, variable)
        data = xobj.data
        desc = {"source": f"xarray:{name}", "variable": variable or name}
    elif isinstance(source, (str, os.PathLike)) and str(source).endswith(".npy"):
        loc = resolve(source)
        try:
            data = np.load(loc.target, mmap_mode="r")
        except FileNotFoundError:
            raise FileNotFoundError(f"input not found: {loc.display}") from None
        except ValueError as exc:
            raise InputError(f"cannot read {loc.display} as a .npy array ({exc})") from None
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
    return Resolved(as_dask_array(data), desc, xobj, loc, checked)


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
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    if xr is not None and isinstance(source, xr.Dataset):
        var = source.variables.get("length")
        return None if var is None or var.dims != ("sample",) else np.asarray(var.values)
    if isinstance(source, (str, os.PathLike, zarr.Group)) and not str(source).endswith(".npy"):
        try:
            group = source if isinstance(source, zarr.Group) else zarr.open_group(
                resolve(source).target, mode="r", storage_options=storage_options)
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
    return _resolve(source, variable, storage_options, fill_missing).arr


def fit(
    source: Source,
    *,
    variable: str | None = None,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
    storage_options: dict[str, Any] | None = None,
    scheduler: Any = None,
    lengths: Lengths = None,
    pad_short: bool = False,
    fill_missing: bool = False,
) -> MiniRocketParameters:
    """Fit MiniRocket reading only the rows drawn for the fit (at most 84 per dilation).

    The drawn rows are in ``params.example_indices``; ``params.extra`` records source (credentials
    removed), variable, seed, rocketstream version and how many distinct rows were read.
    Unequal-length data (see :func:`resolve_lengths`) gets a variable-length model
    (:mod:`rocketstream.core.variable`).

    Parameters
    ----------
    source : Any
        Any input :func:`open_source` accepts.
    variable : str, optional
        The array inside a Zarr group or the variable of a Dataset.
    num_features : int, default 10000
        Requested feature count; the model makes ``84 * (num_features // 84)``.
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one (recorded in ``params.seed``).
    device : str or torch.device, optional
        Where the bias fit runs; None: CUDA where available, else the CPU (variable-length fits run on
        the CPU).
    memory_budget : int, optional
        Bytes of drawn rows kept in memory, and per bias-fit step.
    storage_options : dict, optional
        fsspec options for a URL.
    scheduler : Any, optional
        Where the drawn rows are read: None (the current distributed client, else threads), a scheduler
        name, an address or a Client.
    lengths : None, False or array-like
        Per-series lengths (see :func:`resolve_lengths`).
    pad_short : bool, default False
        Append zeros to drawn series shorter than 9 points instead of refusing them.
    fill_missing : bool, default False
        Read absent Zarr chunks as the fill value instead of raising.

    Returns
    -------
    MiniRocketParameters
        The fitted model.

    Raises
    ------
    FileNotFoundError
        Nothing at the path.
    InputError
        An input that cannot be used (shape, dtype, NaN/Inf in a drawn row, bad lengths) or a bad parameter.
    MissingChunkError
        A drawn row lies in an absent chunk of a Zarr input.

    Examples
    --------
    >>> from rocketstream import fit
    >>> from rocketstream.synthetic import make_series, write_zarr
    >>> path = write_zarr("data.zarr", make_series(1000, 3, 200), chunk_rows=250, group_var="X")
    >>> params = fit(path, variable="X", num_features=1000, random_state=0)
    >>> params.n_features_out, params.extra["fit_rows_distinct"]
    (924, 540)
    """
    problem = device_problem(device)  # fit runs here: a device this process lacks fails before any read
    if problem:
        raise PreflightError(f"device {device} cannot be used here: {problem}; pass --device cpu / "
                             "device='cpu' or leave it out")
    src = _resolve(source, variable, storage_options, fill_missing)
    arr, desc = src.arr, src.desc
    n, _, length = (int(s) for s in arr.shape)
    own = resolve_lengths(source, lengths, n, length, storage_options)
    if own is None:
        params, gatherer = fit_array(arr, num_features, max_dilations_per_kernel, random_state, device,
                                     memory_budget, scheduler)
    else:
        params, gatherer = fit_array_variable(arr, own, num_features, max_dilations_per_kernel,
                                              random_state, memory_budget, scheduler, pad_short)
    extra = {**params.extra, **desc, "seed": params.seed, "rocketstream_version": _version(),
             "fit_rows_read": int(gatherer.rows_read), "fit_rows_distinct": int(gatherer.unique.size)}
    return replace(params, extra=extra)


def _feature_coords(params: MiniRocketParameters) -> dict[str, np.ndarray]:
    table = params.feature_table()
    coords = {"feature": np.arange(params.n_features_out, dtype=np.int64)}
    coords.update({k: table[k] for k in FEATURE_COORDS})
    return coords


def _sample_coords(xobj: Any) -> dict[str, np.ndarray]:
    """Coordinates along ``sample`` only (the index, labels...) that Zarr can store as is."""
    if xobj is None:
        return {}
    out = {}
    for name, coord in xobj.coords.items():
        values = np.asarray(coord.values)
        if coord.dims == ("sample",) and values.dtype.kind in "iufbU":
            out[str(name)] = values
    return out


def chunk_rows(arr: da.Array, params: MiniRocketParameters, chunk_size: int | None) -> int:
    """Samples per task: ``chunk_size``, else the input's own regular chunking, else a size that keeps
    a task near 64 MiB; never more than the number of samples (a larger chunk is the whole input).

    Parameters
    ----------
    arr : dask.array.Array
        The input.
    params : MiniRocketParameters
        The model (its feature count sizes the default).
    chunk_size : int or None
        Samples per task asked for.

    Returns
    -------
    int

    Raises
    ------
    InputError
        ``chunk_size`` is not a positive number.
    """
    if chunk_size is None:
        sizes = arr.chunks[0]
        regular = len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]
        chunk_size = sizes[0] if regular else default_chunk_size(
            params.n_channels, params.length, params.n_features_out)
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise InputError(f"chunk_size must be a positive number of samples, got {chunk_size}")
    return max(1, min(int(chunk_size), int(arr.shape[0])))


def task_bytes(arr: da.Array, params: MiniRocketParameters, rows: int, memory_budget: int | None) -> int:
    """Memory one task needs for ``rows`` samples: the input block as read and as float32, its
    features and their encoded copy, and the core transform's micro-batches.

    Parameters
    ----------
    arr : dask.array.Array
        The input.
    params : MiniRocketParameters
        The model.
    rows : int
        Samples per task.
    memory_budget : int or None
        The core transform's budget per micro-batch.

    Returns
    -------
    int
        Bytes.
    """
    from ..core.budget import DEFAULT_MEMORY_BUDGET

    series = int(arr.shape[1]) * int(arr.shape[2]) * (arr.dtype.itemsize + 4)
    return rows * (series + 3 * 4 * params.n_features_out) + (memory_budget or DEFAULT_MEMORY_BUDGET)


def _check_model(stored_dict: Any, params: MiniRocketParameters, display: str) -> None:
    try:
        stored = from_dict(stored_dict)
    except Exception as exc:
        raise ModelFileError(f"cannot read the model stored in {display} ({exc}); rerun with "
                             "overwrite=True") from exc
    if not stored.equals(params):
        raise IdentityMismatchError(
            f"the features in {display} were made with a different model (seed {stored.seed}, "
            f"{stored.n_features_out} features); resume needs the same model: pass it, or use "
            "overwrite=True to start over")


def _open_to_resume(src: Resolved, params: MiniRocketParameters, out: Location, chunk_size: int | None,
                    storage_options: dict[str, Any] | None) -> FeatureStore | None:
    """The store to finish, after checking it was made from this model and this input (None if
    there is nothing to resume)."""
    try:
        store = FeatureStore.open(out, mode="r+", storage_options=storage_options)
    except FileNotFoundError:
        return None
    _check_model(store.meta.get("model"), params, store.display)
    rows = None if chunk_size is None else chunk_rows(src.arr, params, chunk_size)
    store.check_resumable(src.identity, rows)
    return store


def _create_store(src: Resolved, params: MiniRocketParameters, out: Location, rows: int, overwrite: bool,
                  storage_options: dict[str, Any] | None) -> FeatureStore:
    meta = {"model": to_dict(params), "input": src.identity,
            "provenance": {**src.desc, "seed": int(params.seed), "rocketstream_version": _version()}}
    return FeatureStore.create(
        out, n_samples=int(src.arr.shape[0]), n_features=params.n_features_out, chunk_size=rows,
        meta=meta, feature_coords=_feature_coords(params), sample_coords=_sample_coords(src.xobj),
        overwrite=overwrite, storage_options=storage_options)


class TransformJob:
    """A transform checked on the client before anything is written: input, output, model, lengths,
    chunking and (for resume) the existing store. Nothing on disk changes until :meth:`store` runs.

    Parameters
    ----------
    source, params, output, variable, chunk_size, resume, overwrite, lengths, storage_options, fill_missing
        As in :func:`transform_to_zarr`.

    Attributes
    ----------
    out : Location
        The resolved output.
    src : Resolved
        The resolved input.
    lengths : numpy.ndarray or None
        Per-series lengths (variable-length models).
    resumed : FeatureStore or None
        The store being resumed.
    rows : int
        Samples per task (the resumed store's chunk size when resuming).

    Raises
    ------
    InputError
        ``resume`` with ``overwrite``, an unfitted model, an input that does not fit it, bad lengths or
        ``chunk_size``.
    FileExistsError
        The output exists and neither ``resume`` nor ``overwrite`` is given.
    UnsafeOutputError
        The output overlaps the input, or is something other than a features store.
    IdentityMismatchError
        Resuming a store made with another model or from another input.
    ModelFileError
        Resuming a store whose recorded model cannot be read.
    MissingChunkError
        A chunk of a Zarr input is absent.
    FileNotFoundError
        Nothing at the input path, or the output's directory does not exist.
    """

    def __init__(self, source: Source, params: MiniRocketParameters | str | os.PathLike,
                 output: str | os.PathLike, *, variable: str | None, chunk_size: int | None, resume: bool,
                 overwrite: bool, lengths: Lengths, storage_options: dict[str, Any] | None,
                 fill_missing: bool) -> None:
        if resume and overwrite:
            raise InputError("resume and overwrite exclude each other: resume finishes a store, overwrite "
                             "replaces it; pass only one")
        model_loc = resolve(params) if isinstance(params, (str, os.PathLike)) else None
        params = load_model(model_loc.target) if model_loc is not None else params
        if not params.is_fitted:
            raise InputError("the model has no biases yet; fit it before transforming")
        self.params, self.overwrite, self.storage_options = params, overwrite, storage_options
        self.out = resolve(output)
        self.src = _resolve(source, variable, storage_options, fill_missing)
        check_outputs([("output", self.out)], [(role, loc) for role, loc in (
            ("model file", model_loc), ("input", self.src.location)) if loc is not None])
        check_against_model(tuple(self.src.arr.shape), params)
        self.lengths = _transform_lengths(source, params, self.src.arr, lengths, storage_options)
        self.resumed = _open_to_resume(self.src, params, self.out, chunk_size, storage_options) if resume \
            else None
        self.rows = self.resumed.chunk_size if self.resumed else chunk_rows(self.src.arr, params, chunk_size)
        if self.resumed is None and existing_output(self.out, "features", storage_options) and not overwrite:
            raise FileExistsError(f"output {self.out.display} already exists; pass overwrite=True / "
                                  "--overwrite to replace it, or resume=True / --resume to finish it")
        self.src.check_complete()

    def preflight(self, target: Any, device: torch.device | str | None, memory_budget: int | None) -> None:
        """Device and memory checks where the tasks will run (before the output is touched).

        Parameters
        ----------
        target : Any
            The scheduler, as :func:`~rocketstream.graph.schedule.session` yields it.
        device : str, torch.device or None
            The device the tasks will use.
        memory_budget : int or None
            The core transform's budget per micro-batch.

        Raises
        ------
        PreflightError
            The device is missing where the tasks run, or one task would not fit in memory there.
        """
        check_resources(target, device, task_bytes(self.src.arr, self.params, self.rows, memory_budget),
                        rows=self.rows)

    def store(self) -> FeatureStore:
        """The store to write: the one being resumed, or a new one (replacing an old one if allowed).

        Returns
        -------
        FeatureStore
        """
        if self.resumed is not None:
            return self.resumed
        return _create_store(self.src, self.params, self.out, self.rows, self.overwrite, self.storage_options)


def run_transform(
    source: Source,
    params: MiniRocketParameters | str | os.PathLike,
    output: str | os.PathLike,
    *,
    variable: str | None = None,
    chunk_size: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = False,
    compute: bool = True,
    storage_options: dict[str, Any] | None = None,
    verify: bool = True,
    retries: int = 2,
    lengths: Lengths = None,
    fill_missing: bool = False,
) -> tuple[FeatureStore, Any]:
    """Transform ``source`` chunk by chunk into the features store ``output``; return the store and
    the chunks this run computed (:func:`transform_to_zarr` is the same, returning the features).

    One task per sample chunk runs the core transform on the worker's device, writes its (rows,
    features) float32 block, its digests and then its done marker (see :mod:`rocketstream.graph.runner`).
    Every check that can fail runs before the output is created or an old one removed: the output
    must not overlap the input or the model file, an existing output must be a features store (and
    is replaced only with ``overwrite``), a resumed store must come from this model and this input,
    no chunk of a Zarr input may be absent (unless ``fill_missing``), the device must exist where the
    tasks run and one chunk must fit in memory there. The run holds the output's writer lock
    (``<output>.lock``, see :mod:`rocketstream.storage.lock`). With ``resume`` and ``verify`` the
    blocks already marked done are re-hashed first (a torn or corrupted one is recomputed) and their
    input rows are re-read and compared with the recorded input digests (a difference refuses the
    resume). If workers are lost (``KilledWorker``) or chunks are still missing after the graph ran,
    the missing chunks are resubmitted up to ``retries`` times; if the cluster is gone altogether the
    run stops with :class:`~rocketstream.errors.ClusterLostError`, keeping the chunks written.

    Parameters
    ----------
    source : Any
        Any input :func:`open_source` accepts.
    params : MiniRocketParameters, str or os.PathLike
        A fitted model for the input's channels and length, or its JSON file (which the output must
        not overlap).
    output : str or os.PathLike
        The features store to write (a local path in an existing directory, or an fsspec URL).
    variable : str, optional
        The array inside a Zarr group or the variable of a Dataset.
    chunk_size : int, optional
        Samples per task and per store chunk (default: the input's regular chunking, else about 64 MiB).
    resume : bool, default False
        Compute only the chunks not marked done; the stored model must equal ``params`` and the input
        must be the one the store was made from.
    overwrite : bool, default False
        Replace an existing features store.
    device : str or torch.device, optional
        Where the tasks compute; None: each worker's GPU if it has one, else its CPU.
    memory_budget : int, optional
        Bytes per micro-batch step of the core transform.
    scheduler : Any, optional
        None (the current distributed client, else threads), "threads", "processes", "synchronous",
        an address or a Client.
    workers : int, optional
        Workers of a local scheduler.
    progress : bool, default False
        Show a progress bar (per chunk locally, ``distributed.progress`` on a cluster).
    compute : bool, default True
        Run now; False creates (or opens, with ``resume``) the store and returns the graph instead, which
        does not hold the output's writer lock: run one such graph per output at a time.
    storage_options : dict, optional
        fsspec options for URLs.
    verify : bool, default True
        With ``resume``, verify the chunks already done first.
    retries : int, default 2
        Times missing chunks are resubmitted after lost workers.
    lengths : None, False or array-like
        Per-series lengths of a variable-length model (see :func:`resolve_lengths`).
    fill_missing : bool, default False
        Read absent Zarr input chunks as the fill value instead of raising.

    Returns
    -------
    store : FeatureStore
        The store (finished, unless ``compute=False``).
    chunks : list of int or dask.delayed.Delayed
        The chunks this run computed (those not done before it); with ``compute=False`` a Delayed that
        computes them and gives their indices.

    Raises
    ------
    InputError, FileExistsError, UnsafeOutputError, IdentityMismatchError, ModelFileError, MissingChunkError
        A check before writing failed (see :class:`TransformJob`).
    FileNotFoundError
        Nothing at the input path, or the output's directory does not exist.
    PreflightError
        The device is missing where the tasks run, a chunk does not fit in memory there, or the scheduler
        cannot be reached.
    StoreLockedError
        Another job is writing the output.
    ClusterLostError
        The scheduler or all its workers went away; the chunks written are kept (finish with ``resume``).
    StoreError
        Chunks are still missing after the retries.

    Examples
    --------
    >>> from rocketstream import fit
    >>> from rocketstream.api.outofcore import run_transform
    >>> params = fit("data.zarr", variable="X", num_features=1000, random_state=0)
    >>> store, chunks = run_transform("data.zarr", params, "features.zarr", variable="X", overwrite=True)
    >>> store.n_chunks, chunks
    (4, [0, 1, 2, 3])
    """
    job = TransformJob(source, params, output, variable=variable, chunk_size=chunk_size, resume=resume,
                       overwrite=overwrite, lengths=lengths, storage_options=storage_options,
                       fill_missing=fill_missing)
    out, params = job.out, job.params
    if not compute:
        store = job.store()
        chunks = features_job(job.src.arr, params, store, device, memory_budget, job.lengths)
        return store, chunk_graph(chunks, missing_chunks(store))[0]
    with session(scheduler) as target:
        job.preflight(target, device, memory_budget)
        with StoreLock(out.target, storage_options):
            store = job.store()
            chunks = features_job(job.src.arr, params, store, device, memory_budget, job.lengths)
            try:
                planned = run(chunks, target, workers=workers, progress=progress,
                              local_bar=progress and is_local(scheduler), retries=retries,
                              verify=resume and verify)
            except ClusterLostError as exc:
                raise ClusterLostError(f"{exc}; the chunks written so far are kept: rerun with --resume / "
                                       f"resume=True to finish {out.display}") from exc
    return store, planned


def _transform_lengths(source: Source, params: MiniRocketParameters, arr: da.Array, lengths: Lengths,
                       storage_options: dict[str, Any] | None) -> np.ndarray | None:
    """Lengths for a variable-length model; a fixed-length model takes the stored arrays as they are."""
    if not params.variable_length:
        if lengths is not None and lengths is not False:
            raise InputError("lengths were given but the model was fitted for equal lengths; fit it on the "
                             "unequal-length data (with its lengths) first")
        return None
    n, _, length = (int(s) for s in arr.shape)
    return resolve_lengths(source, lengths, n, length, storage_options)


def transform_to_zarr(source: Source, params: MiniRocketParameters | str | os.PathLike,
                      output: str | os.PathLike, *, compute: bool = True, **options: Any) -> Any:
    """Transform ``source`` chunk by chunk into the Zarr features store ``output`` (the Dask-style
    writer: :func:`run_transform` returning the features).

    Parameters
    ----------
    source, params, output, compute
        As for :func:`run_transform`.
    **options
        Any keyword of :func:`run_transform` (``variable``, ``chunk_size``, ``resume``, ``overwrite``,
        ``device``, ``memory_budget``, ``scheduler``, ``workers``, ``progress``, ``storage_options``,
        ``verify``, ``retries``, ``lengths``, ``fill_missing``).

    Returns
    -------
    zarr.Array or dask.delayed.Delayed
        The zarr ``features`` array, or with ``compute=False`` a Delayed that writes the missing
        chunks and returns their indices (it does not hold the output's writer lock: run one such
        graph per output at a time).

    Raises
    ------
    InputError, FileExistsError, UnsafeOutputError, IdentityMismatchError, MissingChunkError
        A check before writing failed (see :class:`TransformJob`).
    PreflightError, StoreLockedError, ClusterLostError, StoreError
        As in :func:`run_transform`.

    Examples
    --------
    >>> from rocketstream import fit, transform_to_zarr
    >>> from rocketstream.synthetic import make_series, write_zarr
    >>> path = write_zarr("data.zarr", make_series(1000, 3, 200), chunk_rows=250, group_var="X")
    >>> params = fit(path, variable="X", num_features=1000, random_state=0)
    >>> transform_to_zarr(path, params, "features.zarr", variable="X").chunks
    (250, 924)
    """
    store, result = run_transform(source, params, output, compute=compute, **options)
    return store.features if compute else result


def load_store_model(path: str | os.PathLike, storage_options: dict[str, Any] | None = None
                     ) -> MiniRocketParameters:
    """The model stored in a features store's attributes.

    Parameters
    ----------
    path : str or os.PathLike
        The features store.
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    MiniRocketParameters

    Raises
    ------
    FileNotFoundError
        No store at ``path``.
    StoreError
        Not a features store, or an unfinished one.
    ModelFileError
        The recorded model is damaged.
    """
    return from_dict(FeatureStore.open(path, storage_options=storage_options).meta["model"])


def open_features(path: str | os.PathLike, *, allow_incomplete: bool = False,
                  storage_options: dict[str, Any] | None = None) -> Any:
    """Open a features store as a lazy ``xarray.DataArray`` (sample, feature) with its coordinates.

    The data is read through :class:`~rocketstream.storage.features.VerifiedFeatures`: each chunk is
    checked against its sha256 the first time it is computed, and a damaged chunk raises
    :class:`~rocketstream.errors.IntegrityError` naming it. The model (JSON) and provenance are in
    ``attrs`` (``rocketstream_model``...).

    Parameters
    ----------
    path : str or os.PathLike
        The features store.
    allow_incomplete : bool, default False
        Open a store whose chunks are not all written (their rows read as NaN).
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    xarray.DataArray
        Lazy float32 (sample, feature), with the feature coordinates and any stored sample coordinates.

    Raises
    ------
    FileNotFoundError
        No store at ``path``.
    StoreError
        Not a features store, or some chunks are not written yet (without ``allow_incomplete``).
    IntegrityError
        When computed: a chunk fails its check.

    Examples
    --------
    >>> from rocketstream import open_features
    >>> feats = open_features("features.zarr")
    >>> feats.dims, feats.shape
    (('sample', 'feature'), (1000, 924))
    """
    import json

    import xarray as xr

    store = FeatureStore.open(path, storage_options=storage_options)
    done = store.done()
    if not done.all() and not allow_incomplete:
        raise StoreError(f"features store {store.display} is incomplete ({int(done.sum())} of {done.size} "
                         "chunks written); finish it with resume=True / --resume, or pass "
                         "allow_incomplete=True")
    ds = xr.open_zarr(store.path, consolidated=False, storage_options=storage_options, chunks={})
    out = ds["features"].drop_vars([v for v in ds["features"].coords if "chunk" in ds[v].dims])
    out = out.copy(data=store.verified(allow_incomplete=allow_incomplete).to_dask())
    attrs = {k: v for k, v in out.attrs.items() if k != "coordinates"}
    attrs["rocketstream_model"] = json.dumps(store.meta["model"])
    prov = store.meta.get("provenance", {})
    attrs.update({k if k.startswith("rocketstream") else f"rocketstream_{k}": v
                  for k, v in prov.items() if v is not None})
    out.attrs = attrs
    out.encoding.pop("coordinates", None)
    return out


def verify_store(store: FeatureStore, scheduler: Any = "threads") -> list[int]:
    """Chunks of ``store`` marked done whose block fails its sha256 or cannot be read (every block is
    read once).

    Parameters
    ----------
    store : FeatureStore
        The store to check.
    scheduler : Any, default "threads"
        Where the checks run.

    Returns
    -------
    list of int
        The damaged chunks.
    """
    return damaged_chunks(store, scheduler)[0]


def features_info(path: str | os.PathLike, storage_options: dict[str, Any] | None = None,
                  verify: bool = True) -> dict[str, Any]:
    """A summary of a features store: shape, chunks done, model and provenance.

    With ``verify`` every block marked done is read and checked against its sha256: ``complete`` is
    true only if every chunk is written and verifies, and ``damaged_chunks`` lists those that do not.

    Parameters
    ----------
    path : str or os.PathLike
        The features store.
    storage_options : dict, optional
        fsspec options for a URL.
    verify : bool, default True
        Read and check every block marked done.

    Returns
    -------
    dict
        ``kind``, ``path``, ``shape``, ``chunk_size``, ``chunks_done``, ``complete``, ``verified``, the
        model's ``n_channels``, ``length``, ``seed`` and ``model_sha256``, the provenance and the
        ``input`` identity; ``damaged_chunks`` and ``fix`` when some chunk fails.

    Raises
    ------
    FileNotFoundError
        No store at ``path``.
    StoreError
        Not a features store, or an unfinished one.
    ModelFileError
        The recorded model is damaged.

    Examples
    --------
    >>> from rocketstream.api.outofcore import features_info
    >>> info = features_info("features.zarr")
    >>> info["shape"], info["chunks_done"], info["complete"]
    ([1000, 924], '4/4', True)
    """
    store = FeatureStore.open(path, storage_options=storage_options)
    params = from_dict(store.meta["model"])
    done = store.done()
    bad = verify_store(store) if verify and store.has_digests else []
    info = {
        "kind": "features store",
        "path": store.display,
        "shape": [store.n_samples, store.n_features],
        "chunk_size": store.chunk_size,
        "chunks_done": f"{int(done.sum())}/{done.size}",
        "complete": bool(done.all()) and not bad,
        "verified": (f"{int(done.sum()) - len(bad)}/{int(done.sum())} written chunks match their sha256"
                     if verify and store.has_digests else "not verified"),
    }
    if bad:
        info["damaged_chunks"] = bad[:20]
        info["fix"] = "rerun the transform with --resume (the same input and model) to recompute them"
    info.update({
        "n_channels": params.n_channels,
        "length": params.length,
        "seed": params.seed,
        "model_sha256": store.meta["model"].get("sha256"),
        **{k: v for k, v in store.meta.get("provenance", {}).items() if k != "seed"},
    })
    if store.input_identity:
        info["input"] = store.input_identity
    return info


__all__ = ["DIMS", "MARKERS", "ATTR", "features_info", "fit", "load_store_model", "open_features",
           "open_source", "run_transform", "transform_to_zarr", "verify_store"]
