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
from ..core.serialization import from_dict, to_dict
from ..core.validation import InputError, check_against_model
from ..graph.fit import fit_array, fit_array_variable
from ..graph.schedule import compute, is_local, progress_bar, session
from ..graph.source import as_dask_array, default_chunk_size
from ..graph.transform import missing_chunks, verify_graph, write_features
from ..storage.features import ATTR, MARKERS, FeatureStore
from ..storage.lock import StoreLock
from ..storage.zarrstore import open_input_array

log = logging.getLogger("rocketstream")

DIMS = ("sample", "channel", "time")
#: Feature coordinates written next to the features (from ``params.feature_table()``).
FEATURE_COORDS = ("dilation", "dilation_index", "kernel", "quantile_index", "padded", "combination")

#: Chunks per submitted graph: keeps the client's memory flat for datasets of any number of chunks.
GRAPH_BATCH = 512
#: Exceptions (by class name) that mean a worker was lost rather than bad input: the run retries.
WORKER_LOSS = ("KilledWorker", "CommClosedError", "BrokenProcessPool")

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


def _resolve(source: Source, variable: str | None, storage_options: dict[str, Any] | None = None,
             ) -> tuple[da.Array, dict[str, Any], Any]:
    """Return (validated dask array, provenance, xarray DataArray or None)."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    xobj = None
    if xr is not None and isinstance(source, (xr.DataArray, xr.Dataset)):
        xobj, name = _xarray_array(source, variable)
        data = xobj.data
        desc = {"source": f"xarray:{name}", "variable": variable or name}
    elif isinstance(source, (str, os.PathLike)) and str(source).endswith(".npy"):
        try:
            data = np.load(source, mmap_mode="r")
        except FileNotFoundError:
            raise FileNotFoundError(f"input not found: {source}") from None
        except ValueError as exc:
            raise InputError(f"cannot read {source} as a .npy array ({exc})") from None
        desc = {"source": str(source), "variable": None}
    elif isinstance(source, (str, os.PathLike, zarr.Group)) or (
            isinstance(source, zarr.Array) and variable is not None):
        data = open_input_array(source, variable, storage_options)
        where = str(source) if isinstance(source, (str, os.PathLike)) else f"zarr:{data.store_path}"
        desc = {"source": where, "variable": variable}
    else:
        if variable is not None:
            raise InputError(f"variable={variable!r} only applies to Zarr groups and xarray Datasets")
        data = source
        desc = {"source": f"<{type(source).__module__}.{type(source).__name__}>", "variable": None}
    return as_dask_array(data), desc, xobj


Lengths = Any  # None (look for a ``length`` variable beside the data), False (ignore), or an array


def resolve_lengths(source: Source, lengths: Lengths, n: int, length: int,
                    storage_options: dict[str, Any] | None = None) -> np.ndarray | None:
    """Per-series lengths of an unequal-length dataset stored padded, or None if all are full.

    ``lengths=None`` uses a 1-D ``length`` variable stored beside the data (as ``rocketstream
    ingest`` writes) in an xarray Dataset or a Zarr group; ``False`` ignores it; an array is used
    as given.
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
                str(source), mode="r", storage_options=storage_options)
        except Exception:  # not a group (a bare array): no lengths
            return None
        if "length" in group and isinstance(group["length"], zarr.Array) and group["length"].ndim == 1:
            return np.asarray(group["length"][:])
    return None


def open_source(source: Source, variable: str | None = None, *,
                storage_options: dict[str, Any] | None = None) -> da.Array:
    """Open any supported input as a validated (sample, channel, time) Dask array.

    Accepts a Zarr path or fsspec URL (``variable`` names an array inside a group), a zarr Array or
    Group, an xarray DataArray/Dataset with dims (sample, channel, time), a ``.npy`` file, or a
    Dask/NumPy array. Chunks hold whole series (time and channels are merged with a warning).
    """
    return _resolve(source, variable, storage_options)[0]


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
) -> MiniRocketParameters:
    """Fit MiniRocket reading only the rows drawn for the fit (at most 84 per dilation).

    The drawn rows are in ``params.example_indices``; ``params.extra`` records source, variable,
    seed, rocketstream version and how many distinct rows were read. Unequal-length data (see
    :func:`resolve_lengths`) gets a variable-length model (:mod:`rocketstream.core.variable`).
    """
    arr, desc, _ = _resolve(source, variable, storage_options)
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


def _prepare_store(arr: da.Array, params: MiniRocketParameters, output: str | os.PathLike, *,
                   desc: dict[str, Any], xobj: Any, chunk_size: int | None, resume: bool, overwrite: bool,
                   storage_options: dict[str, Any] | None) -> FeatureStore:
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume finishes a store, overwrite "
                         "replaces it; pass only one")
    if not params.is_fitted:
        raise ValueError("the model has no biases yet; fit it before transforming")
    check_against_model(tuple(arr.shape), params)
    store = None
    if resume:
        try:
            store = FeatureStore.open(output, mode="r+", storage_options=storage_options)
        except FileNotFoundError:
            store = None  # nothing to resume: start fresh
    if store is not None:
        try:
            stored = from_dict(store.meta.get("model"))
        except Exception as exc:
            raise ValueError(f"cannot read the model stored in {output} ({exc}); "
                             "rerun with overwrite=True") from None
        if not stored.equals(params):
            raise ValueError(f"the features in {output} were made with a different model (seed "
                             f"{stored.seed}, {stored.n_features_out} features); resume needs the same "
                             "model: pass it, or use overwrite=True to start over")
        if chunk_size is not None and int(chunk_size) != store.chunk_size:
            raise ValueError(f"{output} is chunked by {store.chunk_size} samples; resume with the same "
                             f"chunk size (or none), not {chunk_size}")
        if store.n_samples != arr.shape[0]:
            raise ValueError(f"{output} was made for {store.n_samples} samples but the input has "
                             f"{arr.shape[0]}; resume with the same input, or overwrite=True")
        return store
    if chunk_size is None:
        sizes = arr.chunks[0]
        regular = len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]
        chunk_size = sizes[0] if regular else default_chunk_size(
            params.n_channels, params.length, params.n_features_out)
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of samples, got {chunk_size}")
    meta = {"model": to_dict(params),
            "provenance": {**desc, "seed": int(params.seed), "rocketstream_version": _version()}}
    return FeatureStore.create(
        output, n_samples=int(arr.shape[0]), n_features=params.n_features_out, chunk_size=chunk_size,
        meta=meta, feature_coords=_feature_coords(params), sample_coords=_sample_coords(xobj),
        overwrite=overwrite, storage_options=storage_options)


def run_transform(
    source: Source,
    params: MiniRocketParameters,
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
    storage_options: dict[str, Any] | None = None,
    verify: bool = True,
    retries: int = 2,
    lengths: Lengths = None,
) -> tuple[FeatureStore, list[int]]:
    """:func:`transform_to_zarr`, returning the store and the chunk indices computed by this run.

    The run holds the output's writer lock (``<output>.lock``, see :mod:`rocketstream.storage.lock`):
    a second job writing the same output is refused. With ``resume`` and ``verify`` the blocks already
    marked done are re-hashed first and any torn or corrupted one is recomputed. If workers are lost
    (``KilledWorker``) or chunks are still missing after the graph ran, the missing chunks are
    resubmitted up to ``retries`` times.
    """
    arr, desc, xobj = _resolve(source, variable, storage_options)
    own = _transform_lengths(source, params, arr, lengths, storage_options)
    with StoreLock(output, storage_options):
        store = _prepare_store(arr, params, output, desc=desc, xobj=xobj, chunk_size=chunk_size,
                               resume=resume, overwrite=overwrite, storage_options=storage_options)
        with session(scheduler) as target:
            if resume and verify:
                _verify_done(store, target, workers)
            todo = missing_chunks(store)
            planned = list(todo)
            bar = progress_bar(len(todo)) if progress and todo and is_local(scheduler) else None
            try:
                for attempt in range(retries + 1):
                    try:
                        for s in range(0, len(todo), GRAPH_BATCH):  # bounded graph size
                            graph, _, prefix = write_features(arr, params, store, device, memory_budget,
                                                              chunks=todo[s : s + GRAPH_BATCH], lengths=own)
                            compute(graph, target, workers, bar if bar is not None else progress, prefix)
                    except Exception as exc:
                        if type(exc).__name__ not in WORKER_LOSS or attempt == retries:
                            raise
                        log.warning("transform: lost a worker (%s: %s); resubmitting the missing chunks",
                                    type(exc).__name__, exc)
                    done = store.done()
                    todo = [i for i in todo if not done[i]]
                    if not todo:
                        break
                    if attempt == retries:
                        raise RuntimeError(f"{len(todo)} chunk(s) of {output} are still missing after "
                                           f"{retries + 1} attempts (first {todo[:5]}); rerun with "
                                           "resume=True / --resume")
                    log.warning("transform: %d chunk(s) still missing; resubmitting them", len(todo))
            finally:
                if bar is not None:
                    bar.close()
    return store, planned  # all done now, including those finished before a retry


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


def _verify_done(store: FeatureStore, target: Any, workers: int | None) -> list[int]:
    """Re-hash the blocks marked done; unmark (so recompute) those that are torn or corrupted."""
    if not store.has_digests:
        log.info("resume: %s has no chunk digests (older format); trusting its done markers", store.path)
        return []
    marked = np.flatnonzero(store.done()).tolist()
    bad: list[int] = []
    for s in range(0, len(marked), GRAPH_BATCH):
        bad += compute(verify_graph(store, marked[s : s + GRAPH_BATCH]), target, workers)
    if bad:
        log.warning("resume: %d chunk(s) marked done in %s fail their sha256 check (torn or corrupted: "
                    "%s); recomputing them", len(bad), store.path, bad[:10])
        store.reset(bad)
    else:
        log.info("resume: %d chunk(s) marked done verified against their sha256", len(marked))
    return bad


def transform_to_zarr(
    source: Source,
    params: MiniRocketParameters,
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
    lengths: Lengths = None,
) -> Any:
    """Transform ``source`` chunk by chunk into the Zarr features store ``output``.

    One task per sample chunk runs the core transform on the worker's device (``device=None``: its
    GPU if any, else CPU), writes its (rows, features) float32 block and then its done marker.
    ``resume=True`` computes only chunks not marked done (the stored model must equal ``params``);
    existing output is never replaced without ``overwrite=True``. ``scheduler``: None (the current
    distributed client, else threads), "threads", "processes", "synchronous", an address or a Client.

    Returns the zarr ``features`` array, or with ``compute=False`` a Delayed that writes the missing
    chunks and returns their indices (that Delayed does not hold the output's writer lock: run one
    such graph per output at a time).
    """
    if compute:
        store, _ = run_transform(source, params, output, variable=variable, chunk_size=chunk_size,
                                 resume=resume, overwrite=overwrite, device=device,
                                 memory_budget=memory_budget, scheduler=scheduler, workers=workers,
                                 progress=progress, storage_options=storage_options, lengths=lengths)
        return store.features
    arr, desc, xobj = _resolve(source, variable, storage_options)
    own = _transform_lengths(source, params, arr, lengths, storage_options)
    store = _prepare_store(arr, params, output, desc=desc, xobj=xobj, chunk_size=chunk_size, resume=resume,
                           overwrite=overwrite, storage_options=storage_options)
    return write_features(arr, params, store, device, memory_budget, lengths=own)[0]


def load_store_model(path: str | os.PathLike, storage_options: dict[str, Any] | None = None
                     ) -> MiniRocketParameters:
    """The model stored in a features store's attributes."""
    return from_dict(FeatureStore.open(path, storage_options=storage_options).meta["model"])


def open_features(path: str | os.PathLike, *, allow_incomplete: bool = False,
                  storage_options: dict[str, Any] | None = None) -> Any:
    """Open a features store as a lazy ``xarray.DataArray`` (sample, feature) with its coordinates.

    Raises if some chunks are not written yet, unless ``allow_incomplete`` (missing rows are NaN).
    """
    import json

    import xarray as xr

    store = FeatureStore.open(path, storage_options=storage_options)
    done = store.done()
    if not done.all() and not allow_incomplete:
        raise ValueError(f"features store {path} is incomplete ({int(done.sum())} of {done.size} chunks "
                         "written); finish it with resume=True / --resume, or pass allow_incomplete=True")
    ds = xr.open_zarr(str(path), consolidated=False, storage_options=storage_options, chunks={})
    out = ds["features"].drop_vars([v for v in ds["features"].coords if "chunk" in ds[v].dims])
    attrs = {k: v for k, v in out.attrs.items() if k != "coordinates"}
    attrs["rocketstream_model"] = json.dumps(store.meta["model"])
    prov = store.meta.get("provenance", {})
    attrs.update({k if k.startswith("rocketstream") else f"rocketstream_{k}": v
                  for k, v in prov.items() if v is not None})
    out.attrs = attrs
    out.encoding.pop("coordinates", None)
    return out


def features_info(path: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A summary of a features store: shape, chunks done, model and provenance."""
    store = FeatureStore.open(path, storage_options=storage_options)
    params = from_dict(store.meta["model"])
    done = store.done()
    return {
        "kind": "features store",
        "path": str(path),
        "shape": [store.n_samples, store.n_features],
        "chunk_size": store.chunk_size,
        "chunks_done": f"{int(done.sum())}/{done.size}",
        "complete": bool(done.all()),
        "n_channels": params.n_channels,
        "length": params.length,
        "seed": params.seed,
        "model_sha256": store.meta["model"].get("sha256"),
        **{k: v for k, v in store.meta.get("provenance", {}).items() if k != "seed"},
    }


__all__ = ["DIMS", "MARKERS", "ATTR", "features_info", "fit", "load_store_model", "open_features",
           "open_source", "run_transform", "transform_to_zarr"]
