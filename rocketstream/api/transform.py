"""Transform out of core into a resumable features store: every check before anything is written
(:class:`TransformJob`), then the chunk runner (:mod:`rocketstream.graph.runner`). With ``append`` an
existing store grows with its input (see :func:`~rocketstream.graph.runner.grow`); following an input
as it is written is :func:`rocketstream.api.follow.follow_transform`."""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.parameters import MiniRocketParameters
from ..core.serialization import ModelFileError, fingerprint, from_dict, to_dict
from ..core.serialization import load as load_model
from ..core.validation import InputError, check_against_model
from ..errors import ClusterLostError, IdentityMismatchError
from ..graph.preflight import check_resources
from ..graph.runner import ChunkJob, chunk_graph, failed_on_input, missing_chunks, run
from ..graph.schedule import is_local, session, task_slots
from ..graph.source import default_chunk_size
from ..graph.transform import features_job, features_of
from ..storage.features import FeatureStore
from ..storage.locations import Location, check_outputs, resolve
from ..storage.lock import StoreLock
from ..storage.outputs import existing_output
from .inputs import (
    Lengths,
    Resolved,
    Source,
    grow_to_input,
    model_lengths,
    resolve_input,
    rocketstream_version,
    sync_input_coords,
)

if TYPE_CHECKING:
    import dask.array as da
    import torch

    from ..graph.source import RowSource

#: Feature coordinates written next to the features (from ``params.feature_table()``).
FEATURE_COORDS = ("dilation", "dilation_index", "kernel", "quantile_index", "padded", "combination")


def feature_coordinates(params: MiniRocketParameters) -> dict[str, np.ndarray]:
    table = params.feature_table()
    coords = {"feature": np.arange(params.n_features_out, dtype=np.int64)}
    coords.update({k: table[k] for k in FEATURE_COORDS})
    return coords


def chunk_rows(arr: RowSource | da.Array, params: MiniRocketParameters, chunk_size: int | None,
               slots: int | None = None) -> int:
    """Samples per task: ``chunk_size``, else an automatic size; never more than the number of samples
    (a larger chunk is the whole input). The features do not depend on it (bitwise).

    The automatic size is the input's own regular chunking, else a size that keeps a task near
    ``TASK_CHUNK_BYTES`` (64 MiB) of input or features. An input chunk whose features would be larger
    (short series: 10,000 features take 40 KB a series) is cut into equal tasks under that size, so a
    task's memory does not grow with the input's chunks. Then, when that gives fewer than
    ``TASKS_PER_WORKER`` (2) tasks per slot (``slots``: a cluster's worker threads, see
    :func:`~rocketstream.graph.schedule.task_slots`; else
    :func:`~rocketstream.graph.schedule.local_workers`: every core here), it is cut to
    ``ceil(n / (2 * slots))`` samples, but not below ``MIN_TASK_BYTES`` (1 MiB) of input and
    features per task, so tiny data stays one task. A task cut from a larger input chunk reads that
    chunk; :func:`task_bytes` counts it. For example 12000 series of 3 x 1000 in ``rocketstream
    ingest``'s 8 MiB chunks (699 series): 18 tasks on up to 9 slots; on 16, 32 tasks of 375 series.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        The input (its shape and chunking are used).
    params : MiniRocketParameters
        The model (its feature count sizes the default).
    chunk_size : int or None
        Samples per task asked for.
    slots : int, optional
        Tasks that run at once (default: :func:`~rocketstream.graph.schedule.local_workers`).

    Returns
    -------
    int
        Samples per task: at least 1, at most the number of samples.

    Raises
    ------
    InputError
        ``chunk_size`` is not a positive number.
    """
    n = int(arr.shape[0])
    if chunk_size is None:
        from ..config import MIN_TASK_BYTES, TASKS_PER_WORKER
        from ..graph.schedule import local_workers

        sizes = arr.chunks[0]
        regular = len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]
        cap = default_chunk_size(int(arr.shape[1]), int(arr.shape[2]), params.n_features_out)
        rows = int(sizes[0]) if regular else cap
        if rows > cap:  # short series: an input chunk's features would pass TASK_CHUNK_BYTES; cut it evenly
            rows = -(-rows // -(-rows // cap))
        want = TASKS_PER_WORKER * (slots or local_workers())
        if rows > 0 and -(-n // rows) < want:
            per_row = 4 * (int(arr.shape[1]) * int(arr.shape[2]) + params.n_features_out)
            rows = min(rows, max(-(-n // want), -(-MIN_TASK_BYTES // per_row)))
        chunk_size = rows
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise InputError(f"chunk_size must be a positive number of samples, got {chunk_size}")
    return max(1, min(int(chunk_size), n))


def task_bytes(arr: RowSource | da.Array, params: MiniRocketParameters, rows: int,
               memory_budget: int | None) -> int:
    """Memory one task needs for ``rows`` samples: the input chunks it reads (all of every input chunk
    its rows touch, the most any task reads), its rows as float32, its features and their encoded copy,
    and the core transform's micro-batches.

    Parameters
    ----------
    arr : RowSource or dask.array.Array
        The input (its shape, chunking and dtype are used).
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

    bounds = np.concatenate([[0], np.cumsum(arr.chunks[0], dtype=np.int64)])
    starts = np.arange(0, int(bounds[-1]), max(1, int(rows)), dtype=np.int64)
    stops = np.minimum(starts + int(rows), bounds[-1])
    spans = (bounds[np.searchsorted(bounds, stops, side="left")]
             - bounds[np.searchsorted(bounds, starts, side="right") - 1])
    read = max(int(rows), int(spans.max()) if spans.size else 0)
    series = int(arr.shape[1]) * int(arr.shape[2])
    return (read * series * arr.dtype.itemsize + rows * (series * 4 + 3 * 4 * params.n_features_out)
            + (memory_budget or DEFAULT_MEMORY_BUDGET))


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
                    storage_options: dict[str, Any] | None, append: bool = False) -> FeatureStore | None:
    """The store to finish (or, with ``append``, to grow), after checking it was made from this model and
    this input (None if there is nothing to resume)."""
    try:
        store = FeatureStore.open(out, mode="r+", storage_options=storage_options, resizing_ok=append)
    except FileNotFoundError:
        return None
    _check_model(store.meta.get("model"), params, store.display)
    rows = None if chunk_size is None else chunk_rows(src.data, params, chunk_size)
    if append:
        store.check_growable(src.identity, rows)
    else:
        store.check_resumable(src.identity, rows)
    return store


def _create_store(src: Resolved, params: MiniRocketParameters, out: Location, rows: int, overwrite: bool,
                  storage_options: dict[str, Any] | None, n: int | None = None,
                  coords: dict[str, np.ndarray] | None = None) -> FeatureStore:
    n = src.shape[0] if n is None else int(n)
    coords = src.sample_coords() if coords is None else coords
    provenance = {**src.desc, "seed": int(params.seed), "rocketstream_version": rocketstream_version()}
    meta = {"model": to_dict(params), "input": {**src.identity, "shape": [n, *src.identity["shape"][1:]]},
            "provenance": provenance, "input_coords": {k: k for k in coords}}
    if src.recorded_task() is not None:
        meta["task"] = src.recorded_task()
    return FeatureStore.create(
        out, n_samples=n, n_features=params.n_features_out, chunk_size=rows,
        meta=meta, feature_coords=feature_coordinates(params), sample_coords=coords,
        overwrite=overwrite, storage_options=storage_options)


class TransformJob:
    """A transform checked on the client before anything is written: input, output, model, lengths,
    chunking and (for resume) the existing store. Nothing on disk changes until :meth:`store` runs.

    Parameters
    ----------
    source, params, output, variable, chunk_size, resume, overwrite, lengths, storage_options, fill_missing
        As in :func:`transform_to_zarr`.
    append : bool, default False
        Grow an existing store with its input (see :func:`run_transform`).
    follow : bool, default False
        Checks for :func:`~rocketstream.api.follow.follow_transform`: absent input chunks are not an
        error (they have not been written yet), lengths are read as they land, and an existing store is
        continued.

    Attributes
    ----------
    out : Location
        The resolved output.
    src : Resolved
        The resolved input.
    lengths : numpy.ndarray or None
        Per-series lengths (variable-length models).
    resumed : FeatureStore or None
        The store being resumed (or grown).
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
                 fill_missing: bool, append: bool = False, follow: bool = False) -> None:
        if (resume or append) and overwrite:
            raise InputError(f"{'append' if append else 'resume'} and overwrite exclude each other: "
                             f"{'append grows' if append else 'resume finishes'} a store, overwrite replaces "
                             "it; pass only one")
        self.kind, self.append, self.follow, self.source = "transform", append, follow, source
        self.variable, self.fill_missing = variable, fill_missing
        model_loc = resolve(params) if isinstance(params, (str, os.PathLike)) else None
        params = load_model(model_loc.target) if model_loc is not None else params
        if not params.is_fitted:
            raise InputError("the model has no biases yet; fit it before transforming")
        self.params, self.overwrite, self.storage_options = params, overwrite, storage_options
        self.out = resolve(output)
        self.src = resolve_input(source, variable, storage_options, fill_missing)
        check_outputs([("output", self.out)], [(role, loc) for role, loc in (
            ("model file", model_loc), ("input", self.src.location)) if loc is not None])
        check_against_model(self.src.shape, params)
        self.lengths = model_lengths(source, params, self.src.data, False if follow else lengths,
                                     storage_options)
        self.resumed = _open_to_resume(self.src, params, self.out, chunk_size, storage_options, append) \
            if resume or append or (follow and not overwrite) else None
        self.chunk_size = chunk_size
        self.rows = self.resumed.chunk_size if self.resumed else chunk_rows(self.src.data, params, chunk_size)
        if self.resumed is None and existing_output(self.out, "features", storage_options) and not overwrite:
            raise FileExistsError(f"output {self.out.display} already exists; pass overwrite=True / "
                                  "--overwrite to replace it, or resume=True / --resume to finish it")
        if not follow:  # a follower waits for absent chunks
            self.src.check_complete()

    def size_tasks(self, target: Any, workers: int | None = None, device: Any = None) -> None:
        """Size a new store's tasks for where they run (:func:`~rocketstream.graph.schedule.task_slots`):
        automatic sizes count a cluster's worker threads (not this machine's cores), so that every
        worker gets at least two tasks; on a GPU they keep whole input chunks (on an H200, 250-row
        tasks of 3 x 1000 series ran at 0.81 of 500-row ones, 7-row tasks of 3 x 10000 at 0.32 of
        100-row ones).

        Parameters
        ----------
        target : Any
            What :func:`~rocketstream.graph.schedule.session` yields.
        workers : int, optional
            Workers of a local scheduler.
        device : str or torch.device, optional
            Where the tasks compute.
        """
        if self.resumed is None and self.chunk_size is None:
            self.rows = chunk_rows(self.src.data, self.params, None, task_slots(target, workers, device))

    def preflight(self, target: Any, device: torch.device | str | None, memory_budget: int | None) -> None:
        """Device and memory checks where the tasks will run (before the output is touched): those of
        :func:`~rocketstream.graph.preflight.check_resources` for one chunk of this job.

        Parameters
        ----------
        target, device
            As for :func:`~rocketstream.graph.preflight.check_resources`.
        memory_budget : int or None
            The core transform's budget per micro-batch.

        Raises
        ------
        PreflightError
            The device is missing where the tasks run, or one task would not fit in memory there.
        """
        check_resources(target, device, task_bytes(self.src.data, self.params, self.rows, memory_budget),
                        rows=self.rows)

    def store(self, n: int | None = None, coords: dict[str, np.ndarray] | None = None) -> FeatureStore:
        """The store to write: the one being resumed, or a new one (replacing an old one if allowed).

        Parameters
        ----------
        n : int, optional
            Samples of a new store (default: all of the input).
        coords : dict of str to numpy.ndarray, optional
            Its per-sample coordinates (default: read from the input).

        Returns
        -------
        FeatureStore
        """
        if self.resumed is not None:
            return self.resumed
        self.resumed = _create_store(self.src, self.params, self.out, self.rows, self.overwrite,
                                     self.storage_options, n, coords)
        return self.resumed

    def chunk_job(self, store: FeatureStore, arr: Any = None, lengths: np.ndarray | None = None, *,
                  device: Any = None, memory_budget: int | None = None, reader: Any = None) -> ChunkJob:
        """The chunk job writing the features of ``arr`` (default: the input) into ``store``.

        Parameters
        ----------
        store : FeatureStore
            The output.
        arr : RowSource or dask.array.Array, optional
            The input rows (default: the resolved input).
        lengths : numpy.ndarray, optional
            Per-series lengths (default: the input's, for variable-length models).
        device, memory_budget
            As in :func:`run_transform`.
        reader : RowReader, optional
            See :class:`~rocketstream.graph.runner.ChunkJob`.

        Returns
        -------
        ChunkJob
        """
        arr = self.src.data if arr is None else arr
        lengths = self.lengths if lengths is None and arr is self.src.data else lengths
        fn = partial(features_of, params=self.params, key=fingerprint(self.params), device=device,
                     memory_budget=memory_budget)
        return ChunkJob(arr, store, fn, lengths, "transform", reader)

    def finish(self, store: FeatureStore, **extra: Any) -> None:
        """Nothing to do once a features store is complete (its markers say it).

        Parameters
        ----------
        store : FeatureStore
        **extra
            Ignored.
        """


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
    append: bool = False,
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

    With ``append`` an existing store grows with its input, which grew along samples (zarr ``append``,
    xarray ``to_zarr(append_dim="sample")``): only the new rows are computed, and the partly filled
    last chunk is recomputed over its new rows, so the store equals a one-shot run bit for bit; the
    per-sample coordinates grow too, and the store records when how many rows were added. The old rows
    must be unchanged: with ``verify`` every done chunk's input rows are compared with their recorded
    digest (always those of the partly filled chunk, and the coordinates), and a difference refuses the
    append before anything is written. The store keeps its chunk size. Without an existing store,
    ``append`` makes one.

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
    append : bool, default False
        Grow the existing store with its grown input (see above); excludes ``overwrite`` and
        ``compute=False``.

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
    if append and not compute:
        raise InputError("append needs compute=True: the store grows before its chunks are computed")
    job = TransformJob(source, params, output, variable=variable, chunk_size=chunk_size, resume=resume,
                       overwrite=overwrite, lengths=lengths, storage_options=storage_options,
                       fill_missing=fill_missing, append=append)
    out, params = job.out, job.params
    if not compute:
        store = job.store()
        chunks = features_job(job.src.data, params, store, device, memory_budget, job.lengths)
        return store, chunk_graph(chunks, missing_chunks(store))[0]
    with session(scheduler) as target:
        job.size_tasks(target, workers, device)
        job.preflight(target, device, memory_budget)
        with StoreLock(out.target, storage_options):
            existed = job.resumed is not None
            store = job.store()
            grew = append and existed and grow_to_input(
                job.chunk_job(store, device=device, memory_budget=memory_budget), job.src, target=target,
                workers=workers, verify=verify)
            if existed and not append:
                sync_input_coords(store, job.src)
            chunks = features_job(job.src.data, params, store, device, memory_budget, job.lengths)
            try:
                planned = run(chunks, target, workers=workers, progress=progress,
                              local_bar=progress and is_local(scheduler), retries=retries,
                              verify=(resume or append) and existed and verify and not grew)
            except ClusterLostError as exc:
                raise ClusterLostError(f"{exc}; the chunks written so far are kept: rerun with --resume / "
                                       f"resume=True to finish {out.display}") from exc
            except InputError as exc:
                again = "`rocketstream transform ... --resume` / resume=True"
                raise failed_on_input(exc, store, again) from exc
    return store, planned


def transform_to_zarr(source: Source, params: MiniRocketParameters | str | os.PathLike,
                      output: str | os.PathLike, *, compute: bool = True, **options: Any) -> Any:
    """Transform ``source`` chunk by chunk into the Zarr features store ``output`` (the Dask-style
    writer: :func:`run_transform` returning the features).

    Parameters
    ----------
    source, params, output, compute
        As for :func:`run_transform`.
    **options
        Any keyword of :func:`run_transform` (``variable``, ``chunk_size``, ``resume``, ``append``,
        ``overwrite``, ``device``, ``memory_budget``, ``scheduler``, ``workers``, ``progress``,
        ``storage_options``, ``verify``, ``retries``, ``lengths``, ``fill_missing``).

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
