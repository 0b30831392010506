"""Prediction out of core: transform + head per sample chunk into a predictions Zarr store, and
evaluation of stored predictions against labels.

Layout of a predictions store (readable with ``xarray.open_zarr``)::

    PRED.zarr/            attrs["rocketstream"] = {format, task, head, model, source, complete, ...}
      label    (sample,)          predicted class labels (classification)
      proba    (sample, class)    float32 softmax probabilities (softmax classification heads)
      decision (sample[, class])  float64 ridge decision scores (ridge classification heads)
      value    (sample[, target]) float64 predicted values (regression)
      class    (class,)           the class labels, in the column order of proba / decision
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..core.parameters import MiniRocketParameters
from ..core.serialization import fingerprint, to_dict
from ..core.serialization import load as load_model
from ..core.validation import InputError, check_against_model
from ..errors import ClusterLostError, IdentityMismatchError, StoreError
from ..graph.preflight import check_resources
from ..graph.runner import ChunkJob, failed_on_input, run
from ..graph.schedule import is_local, resolve_scheduler, session, task_slots
from ..heads import Head, load_head
from ..storage.chunkstore import digest_bytes
from ..storage.locations import check_outputs, redact, resolve
from ..storage.lock import StoreLock
from ..storage.outputs import STORE_FORMATS, existing_output
from ..storage.predictions import PredictionStore
from ..storage.zarrstore import plain_strings, read_checked

if TYPE_CHECKING:
    import torch

FORMAT = STORE_FORMATS["predictions"]
FORMAT_VERSION = PredictionStore.VERSION
ATTR = "rocketstream"
def check_head_model(head: Head, params: MiniRocketParameters, head_name: str = "the head",
                     model_name: str = "the model") -> None:
    """Refuse a head trained on the features of another model (heads record the model's fingerprint).

    Parameters
    ----------
    head : Head
        A fitted head.
    params : MiniRocketParameters
        The model the features will come from.
    head_name, model_name : str
        How messages name them.

    Raises
    ------
    InputError
        The head expects another number of features than the model makes.
    IdentityMismatchError
        The head was trained on the features of another model.

    Warns
    -----
    UserWarning
        When the head does not record which model made its training features (nothing to check).
    """
    if head.n_features_in_ != params.n_features_out:
        raise InputError(f"{head_name} was trained on {head.n_features_in_} features but {model_name} makes "
                         f"{params.n_features_out}; use the model the head's features came from")
    made_by = getattr(head, "model_fingerprint_", None)
    if made_by is None:
        warnings.warn(f"{head_name} does not record which model made its training features (trained from "
                      f"plain arrays, or by an older rocketstream); cannot check that {model_name} is that "
                      "model: pass model= to the head's fit to record it", UserWarning, stacklevel=3)
        return
    if made_by != fingerprint(params):
        raise IdentityMismatchError(
            f"{head_name} was trained on the features of model {made_by[:12]}, but {model_name} is model "
            f"{fingerprint(params)[:12]} (seed {params.seed}); predictions would be meaningless: use the "
            "model the head's features came from (`rocketstream info FEATURES.zarr` shows it)")


def predictions_of(block: np.ndarray, start: int, lengths: np.ndarray | None, *,
                   params: MiniRocketParameters, key: str, head: Head, device: Any = None,
                   ) -> dict[str, np.ndarray]:
    """One chunk's outputs for the predictions store (a :data:`~rocketstream.graph.runner.BlockFunction`):
    the chunk's features, then the head's outputs.

    Parameters
    ----------
    block : numpy.ndarray
        The chunk's input rows (rows, channels, length).
    start : int
        Index of its first row.
    lengths : numpy.ndarray or None
        The rows' own lengths (variable-length models).
    params : MiniRocketParameters
        The model.
    key : str
        Its :func:`~rocketstream.core.fingerprint`.
    head : Head
        The fitted head.
    device : str or torch.device, optional
        None: CUDA where the worker has it, else its CPU.

    Returns
    -------
    dict of str to numpy.ndarray
        The head's outputs (``label``, ``proba``/``decision``, or ``value``).
    """
    from ..graph.transform import transform_block

    feats = transform_block(block, params, key, device, None, start, lengths)
    return head.outputs(feats, device)  # a torch head applies the device rule itself


def _head_digest(head: Head) -> str:
    """sha256 of a head's fitted state (its arrays and numbers), to recognise it on resume."""
    h = hashlib.sha256(type(head).__name__.encode())
    for name in sorted(vars(head)):
        value = vars(head)[name]
        if name.endswith("_") and isinstance(value, (np.ndarray, float, int, str)) and name != "history_":
            h.update(name.encode())
            h.update(digest_bytes(value) if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()


def predict(
    source: Any,
    model_params: MiniRocketParameters | str | os.PathLike,
    head: Head | str | os.PathLike,
    output: str | os.PathLike,
    *,
    variable: str | None = None,
    chunk_size: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    scheduler: Any = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    fill_missing: bool = False,
    verify: bool = True,
    retries: int = 2,
    append: bool = False,
) -> zarr.Group:
    """Transform ``source`` and apply ``head`` chunk by chunk, writing the predictions Zarr ``output``.

    The chunk runner (:mod:`rocketstream.graph.runner`) runs one task per sample chunk that
    transforms the rows and applies the head, then writes the outputs, their digests and the chunk's
    done marker. Every check runs before the output is created or an old one removed: the head must
    have been trained on this model's features, the output must not overlap an input and may replace
    only a predictions store (with ``overwrite``), no input chunk may be absent (unless
    ``fill_missing``), the device must exist and a chunk must fit in memory where tasks run. The
    store's ``complete`` attribute is set once every chunk is written. With ``append`` an existing
    store grows with its input, scoring only the new series (the rules of
    :func:`~rocketstream.api.transform.run_transform`'s ``append``).

    Parameters
    ----------
    source : Any
        Anything :func:`rocketstream.api.outofcore.open_source` accepts.
    model_params : MiniRocketParameters, str or os.PathLike
        A fitted model or its JSON file.
    head : Head, str or os.PathLike
        A fitted :class:`RidgeHead` / :class:`SoftmaxHead` or its file.
    output : str or os.PathLike
        The predictions store to write.
    variable : str, optional
        The array inside a Zarr group or the variable of a Dataset.
    chunk_size : int, optional
        Samples per task and per store chunk (default: the input's regular chunking, else about 64 MiB).
    overwrite : bool, default False
        Replace an existing predictions store.
    resume : bool, default False
        Finish an interrupted run (same model, head and input).
    scheduler : Any, optional
        None (the current distributed client, else threads), a scheduler name, an address or a Client.
    device : str or torch.device, optional
        Where the tasks compute; None: each worker's GPU if it has one, else its CPU.
    progress : bool, default False
        Show a progress bar.
    fill_missing : bool, default False
        Read absent Zarr input chunks as the fill value instead of raising.
    verify : bool, default True
        With ``resume``, verify the chunks already written first.
    retries : int, default 2
        Times missing chunks are resubmitted after lost workers.
    append : bool, default False
        Grow the existing store with its grown input (same model, head and input; the old rows
        unchanged); excludes ``overwrite``.

    Returns
    -------
    zarr.Group
        The predictions group (layout in the module docstring).

    Raises
    ------
    TypeError
        ``model_params`` or ``head`` is of the wrong type.
    InputError
        ``resume`` with ``overwrite``, an unfitted model, an input or head that does not fit the model,
        or an unknown scheduler.
    FileNotFoundError
        Nothing at the input path, no head file, or the output's directory does not exist.
    ModelFileError
        The model or head file is damaged.
    IdentityMismatchError
        The head was trained on another model's features, or the resumed store was made with another
        model, head or input.
    FileExistsError
        The output exists and neither ``resume`` nor ``overwrite`` is given.
    UnsafeOutputError
        The output overlaps an input, or is something other than a predictions store.
    StoreError
        Resuming a store too old to resume, or chunks still missing after the retries.
    MissingChunkError
        A chunk of a Zarr input is absent.
    PreflightError, StoreLockedError, ClusterLostError
        As in :func:`~rocketstream.api.outofcore.run_transform`.

    Examples
    --------
    With a fitted ``model.json``, a ridge head ``head.npz`` trained on its features and 200 test series:

    >>> from rocketstream import predict
    >>> group = predict("test.zarr", "model.json", "head.npz", "pred.zarr", variable="X")
    >>> group.attrs["rocketstream"]["complete"], group["label"].shape
    (True, (200,))
    """
    job = PredictJob(source, model_params, head, output, variable=variable, chunk_size=chunk_size,
                     overwrite=overwrite, resume=resume, fill_missing=fill_missing, append=append)
    resolve_scheduler(scheduler)  # a bad scheduler name fails before anything is written
    t0 = time.perf_counter()
    with session(scheduler) as target:  # connected, device and memory checked before the store
        job.size_tasks(target, device=device)
        job.preflight(target, device)
        with StoreLock(job.out.target):  # one writer
            existed = job.resumed is not None
            store = job.store()
            chunks = job.chunk_job(store, device=device)
            grew = append and existed and job.grow(chunks, target=target, verify=verify)
            if existed and not append:
                from .inputs import sync_input_coords

                sync_input_coords(store, job.src)
            try:
                run(chunks, target, progress=progress, local_bar=progress and is_local(scheduler),
                    retries=retries, verify=(resume or append) and existed and verify and not grew)
            except ClusterLostError as exc:
                raise ClusterLostError(f"{exc}; the chunks written so far are kept: rerun predict with "
                                       f"--resume / resume=True to finish {job.out.display}") from exc
            except InputError as exc:
                again = "`rocketstream predict ... --resume` / resume=True"
                raise failed_on_input(exc, store, again) from exc
            job.finish(store, seconds=round(time.perf_counter() - t0, 3))
    return store.group


class PredictJob:
    """A prediction checked on the client before anything is written: model, head (trained on this
    model's features), input, output, lengths, chunking and (for resume or append) the existing store.
    Nothing on disk changes until :meth:`store` runs.

    Parameters
    ----------
    source, model_params, head, output, variable, chunk_size, overwrite, resume, fill_missing, append
        As in :func:`predict`.
    follow : bool, default False
        Checks for :func:`~rocketstream.api.follow.follow_predict` (see
        :class:`~rocketstream.api.transform.TransformJob`).

    Attributes
    ----------
    params : MiniRocketParameters
        The model.
    head : Head
        The head.
    out : Location
        The resolved output.
    src : Resolved
        The resolved input.
    lengths : numpy.ndarray or None
        Per-series lengths (variable-length models).
    rows : int
        Samples per task (the existing store's chunk size when there is one).
    resumed : PredictionStore or None
        The store being resumed or grown (or, once :meth:`store` ran, the store).

    Raises
    ------
    TypeError, InputError, FileNotFoundError, ModelFileError, IdentityMismatchError, FileExistsError,
    UnsafeOutputError, StoreError, MissingChunkError
        As :func:`predict` raises them before writing.
    """

    def __init__(self, source: Any, model_params: MiniRocketParameters | str | os.PathLike,
                 head: Head | str | os.PathLike, output: str | os.PathLike, *, variable: str | None,
                 chunk_size: int | None, overwrite: bool, resume: bool, fill_missing: bool,
                 append: bool = False, follow: bool = False) -> None:
        from .inputs import model_lengths, resolve_input  # Dask arrays: not for evaluate
        from .transform import chunk_rows

        if (resume or append) and overwrite:
            raise InputError(f"{'append' if append else 'resume'} and overwrite exclude each other: "
                             f"{'append grows' if append else 'resume finishes'} a store, overwrite replaces "
                             "it; pass only one")
        self.kind, self.append, self.follow, self.source = "predict", append, follow, source
        self.variable, self.fill_missing, self.storage_options = variable, fill_missing, None
        model_loc = resolve(model_params) if isinstance(model_params, (str, os.PathLike)) else None
        params = load_model(model_loc.target) if model_loc is not None else model_params
        if not isinstance(params, MiniRocketParameters):
            raise TypeError(f"model_params must be fitted MiniRocket parameters or a model file path, got "
                            f"{type(params).__name__}")
        if not params.is_fitted:
            raise InputError("the model has no biases yet; fit it before predicting")
        head_path = head if isinstance(head, (str, os.PathLike)) else None
        head_obj = load_head(head) if head_path is not None else head
        if not isinstance(head_obj, Head):
            raise TypeError(f"head must be a fitted head (RidgeHead, SoftmaxHead) or the path of one, got "
                            f"{type(head_obj).__name__}")
        check_head_model(head_obj, params, f"the head {resolve(head_path).display}" if head_path else
                         "the head", f"the model {model_loc.display}" if model_loc else "the model")
        self.params, self.head, self.model_loc = params, head_obj, model_loc
        self.overwrite = overwrite
        self.out = resolve(output)
        self.src = src = resolve_input(source, variable, None, fill_missing)
        check_outputs([("output", self.out)], [(role, loc) for role, loc in (
            ("input", src.location), ("model", model_loc),
            ("head", resolve(head_path) if head_path is not None else None)) if loc is not None])
        check_against_model(src.shape, params)
        self.lengths = model_lengths(source, params, src.data, False if follow else None)
        rows = chunk_rows(src.data, params, chunk_size)
        self.head_info = {**head_obj.info(head_path), "digest": _head_digest(head_obj)}
        self.resumed = _open_to_resume(self.out, params, self.head_info, src.identity,
                                       rows if chunk_size else None, append) \
            if resume or append or (follow and not overwrite) else None
        self.rows = self.resumed.chunk_size if self.resumed is not None else rows
        self.chunk_size = chunk_size
        if self.resumed is None and existing_output(self.out, "predictions") and not overwrite:
            raise FileExistsError(f"output {self.out.display} already exists; pass overwrite=True / "
                                  "--overwrite to replace it, resume=True / --resume to finish it, or choose "
                                  "another path")
        if not follow:  # a follower waits for absent chunks
            src.check_complete()

    def size_tasks(self, target: Any, workers: int | None = None, device: Any = None) -> None:
        """As :meth:`~rocketstream.api.transform.TransformJob.size_tasks`."""
        from .transform import chunk_rows

        if self.resumed is None and self.chunk_size is None:
            self.rows = chunk_rows(self.src.data, self.params, None, task_slots(target, workers, device))

    def preflight(self, target: Any, device: torch.device | str | None, memory_budget: int | None = None
                  ) -> None:
        """Device and memory checks where the tasks will run (see
        :meth:`~rocketstream.api.transform.TransformJob.preflight`).

        Parameters
        ----------
        target, device, memory_budget
            As for :meth:`~rocketstream.api.transform.TransformJob.preflight`.
        """
        from .transform import task_bytes

        check_resources(target, device, task_bytes(self.src.data, self.params, self.rows, memory_budget),
                        rows=self.rows)

    def store(self, n: int | None = None, coords: dict[str, np.ndarray] | None = None) -> PredictionStore:
        """The store to write: the one being resumed or grown, or a new one for ``n`` samples (default all)
        with the per-sample coordinates ``coords`` (default: read from the input).

        Parameters
        ----------
        n : int, optional
            Samples of a new store.
        coords : dict of str to numpy.ndarray, optional
            Input name -> values of its per-sample coordinates.

        Returns
        -------
        PredictionStore
        """
        from .inputs import rocketstream_version

        if self.resumed is not None:
            return self.resumed
        src, params, head = self.src, self.params, self.head
        n = src.shape[0] if n is None else int(n)
        coords = src.sample_coords() if coords is None else coords
        layout = head.output_layout(n, self.rows)
        # the input's coordinates, renamed where a prediction has the same name (``label`` -> ``input_label``)
        names = {k: f"input_{k}" if k in layout else k for k in coords}
        classes = None if head.task == "regression" else np.asarray(head.classes_)
        meta = {
            "task": head.task, "classes": None if classes is None else classes.tolist(),
            "source": {"source": src.desc["source"], "variable": self.variable},
            "input": {**src.identity, "shape": [n, *src.identity["shape"][1:]]},
            "model": {"sha256": to_dict(params)["sha256"], "fingerprint": fingerprint(params),
                      "seed": int(params.seed), "n_features": int(params.n_features_out),
                      "n_channels": int(params.n_channels), "length": int(params.length),
                      "fit_source": params.extra.get("source"),
                      "path": self.model_loc.display if self.model_loc else None},
            "head": self.head_info, "input_coords": names, "rocketstream_version": rocketstream_version(),
        }
        self.resumed = PredictionStore.create(
            self.out, n_samples=n, chunk_size=self.rows, layout=layout, classes=classes, meta=meta,
            overwrite=self.overwrite, sample_coords={names[k]: v for k, v in coords.items()})
        return self.resumed

    def chunk_job(self, store: PredictionStore, arr: Any = None, lengths: np.ndarray | None = None, *,
                  device: Any = None, memory_budget: int | None = None, reader: Any = None) -> ChunkJob:
        """The chunk job writing the predictions of ``arr`` (default: the input) into ``store``.

        Parameters
        ----------
        store : PredictionStore
            The output.
        arr, lengths, reader
            As for :meth:`~rocketstream.api.transform.TransformJob.chunk_job`.
        device : str or torch.device, optional
            Where the tasks compute.
        memory_budget : int, optional
            Unused (the head's transform uses the default budget).

        Returns
        -------
        ChunkJob
        """
        arr = self.src.data if arr is None else arr
        lengths = self.lengths if lengths is None and arr is self.src.data else lengths
        fn = partial(predictions_of, params=self.params, key=fingerprint(self.params), head=self.head,
                     device=device)
        return ChunkJob(arr, store, fn, lengths, "predict", reader)

    def grow(self, job: ChunkJob, *, target: Any = None, verify: bool = True) -> bool:
        """Grow the store of ``job`` to the whole input (see :func:`~rocketstream.api.inputs.grow_to_input`).

        Parameters
        ----------
        job : ChunkJob
            From :meth:`chunk_job`.
        target : Any, optional
            The scheduler.
        verify : bool, default True
            Check every done chunk's input rows, not only the partly filled one's.

        Returns
        -------
        bool
            Whether the store changed.
        """
        from .inputs import grow_to_input

        return grow_to_input(job, self.src, target=target, verify=verify)

    def finish(self, store: PredictionStore, **extra: Any) -> None:
        """Mark the store complete (and consolidate its metadata) once every chunk is done.

        Parameters
        ----------
        store : PredictionStore
        **extra
            More attributes to record (e.g. ``seconds``).
        """
        if (extra or not store.meta.get("complete")) and store.is_complete():
            store.mark_complete(**extra)


def _open_to_resume(out: Any, params: MiniRocketParameters, head_info: dict[str, Any],
                    identity: dict[str, Any], rows: int | None, append: bool = False
                    ) -> PredictionStore | None:
    """The predictions store to finish (or, with ``append``, to grow), after checking it was made with
    this model, head and input (None if there is nothing to resume)."""
    try:
        store = PredictionStore.open(out, mode="r+", resizing_ok=append)
    except FileNotFoundError:
        return None
    if not store.marked:
        raise StoreError(f"{store.display} was written by an older rocketstream without chunk markers and "
                         "cannot be resumed; rerun predict with --overwrite / overwrite=True")
    made = store.meta.get("model", {}).get("fingerprint")
    if made != fingerprint(params):
        raise IdentityMismatchError(f"the predictions in {store.display} were made with model "
                                    f"{str(made)[:12]}, not {fingerprint(params)[:12]} (seed {params.seed}); "
                                    "resume needs the same model: pass it, or use --overwrite")
    made_with = store.meta.get("head", {})
    if made_with.get("digest") != head_info["digest"]:
        raise IdentityMismatchError(
            f"the predictions in {store.display} were made with a {made_with.get('kind')} head "
            f"{str(made_with.get('digest'))[:12]}, not this {head_info['kind']} head "
            f"{head_info['digest'][:12]}; resume needs the same head: pass it, or use --overwrite")
    if append:
        store.check_growable(identity, rows)
    else:
        store.check_resumable(identity, rows)
    return store


# ------------------------------------------------------------------------------------------- reading
def open_predictions(path: str | os.PathLike | zarr.Group) -> zarr.Group:
    """Open a complete predictions store written by :func:`predict`.

    Parameters
    ----------
    path : str, os.PathLike or zarr.Group
        The store.

    Returns
    -------
    zarr.Group

    Raises
    ------
    FileNotFoundError
        No store at a local ``path``.
    StoreError
        Not a Zarr group, not a predictions store, or an incomplete one.

    Examples
    --------
    For the store of a ridge classification head (see :func:`predict`):

    >>> from rocketstream.api.predict import open_predictions
    >>> group = open_predictions("pred.zarr")
    >>> group.attrs["rocketstream"]["task"], sorted(group.array_keys())[-3:]
    ('classification', ['decision', 'input_sha256', 'label'])
    """
    if isinstance(path, zarr.Group):
        group, where = path, repr(path)
    else:
        loc = resolve(path)
        where = loc.display
        if not loc.url and not os.path.exists(loc.target):
            raise FileNotFoundError(f"predictions store not found: {where}")
        try:
            group = zarr.open_group(loc.target, mode="r", use_consolidated=False)
        except Exception as exc:
            raise StoreError(f"{where} is not a Zarr group ({redact(str(exc))}); expected a predictions "
                             "store") from exc
    meta = dict(group.attrs).get(ATTR)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StoreError(f"{where} is not a rocketstream predictions store; make one with `rocketstream "
                         "predict`")
    if not meta.get("complete"):
        raise StoreError(f"predictions store {where} is incomplete (the run was interrupted); finish it "
                         "with `rocketstream predict ... --resume` / resume=True")
    return group


def load_predictions(path: str | os.PathLike | zarr.Group) -> Any:
    """A complete predictions store as an in-memory ``xarray.Dataset``: the predicted ``label`` (or
    ``value``), the scores, and the input's coordinates (``sample``, ``input_label``...), with text as
    plain NumPy ``<U`` arrays (Zarr itself returns text as NumPy's ``StringDType``, which scikit-learn
    and ``astype`` do not accept); the store's bookkeeping arrays are left out.

    Parameters
    ----------
    path : str, os.PathLike or zarr.Group
        The store.

    Returns
    -------
    xarray.Dataset
        One row per predicted sample; the store's attributes (task, head, model...) in ``attrs``.

    Raises
    ------
    FileNotFoundError
        No store at a local ``path``.
    StoreError
        Not a complete predictions store.
    MissingChunkError
        A chunk of the store is absent.

    Examples
    --------
    >>> from rocketstream.api.predict import load_predictions
    >>> ds = load_predictions("pred.zarr")  # doctest: +SKIP
    >>> ds.label.dtype.kind  # doctest: +SKIP
    'U'
    """
    import xarray as xr

    from ..storage.chunkstore import DIGESTS, INPUT_DIGESTS, MARKERS
    from ..storage.zarrstore import dims_of

    group = open_predictions(path)
    meta = dict(group.attrs)[ATTR]
    variables, coords = {}, {}
    for name, arr in sorted(group.arrays()):
        if name in (MARKERS, DIGESTS, INPUT_DIGESTS):
            continue
        values = labels_array(read_checked(arr, f"{name!r} of the predictions store"))
        dims = dims_of(arr) or tuple(f"{name}_dim_{i}" for i in range(arr.ndim))
        is_coord = name in meta.get("input_coords", {}).values() or name == "class" or dims == (name,)
        (coords if is_coord else variables)[name] = (dims, values)
    return xr.Dataset(variables, coords=coords, attrs={ATTR: meta})


def labels_array(values: Any) -> np.ndarray:
    """Labels (NumPy, Zarr, Dask, xarray) as a plain NumPy array; StringDType and object strings become
    fixed-width unicode.

    Parameters
    ----------
    values : array-like
        The labels.

    Returns
    -------
    numpy.ndarray
    """
    if hasattr(values, "compute") and not isinstance(values, np.ndarray):
        values = values.compute()
    if hasattr(values, "values") and not isinstance(values, np.ndarray) and not callable(values.values):
        values = values.values
    if isinstance(values, zarr.Array):
        values = values[...]
    arr = np.asarray(values)
    return np.asarray(arr.tolist()) if arr.dtype.kind == "O" else plain_strings(arr)


def split_label_spec(spec: str) -> tuple[str, str | None]:
    """``(store, name)`` of a label spec: ``STORE.zarr:NAME`` -> (``STORE.zarr``, ``NAME``); a spec
    without a name (a path, a URL such as ``s3://b/y.zarr``, a ``.npy`` file) -> (spec, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and "/" not in tail and not tail.startswith("//") and not head.endswith(":"):
        return head, tail
    return spec, None


def load_labels(spec: str | os.PathLike, fill_missing: bool = False) -> np.ndarray:
    """Read labels from a spec: ``STORE.zarr:NAME`` (an array or coordinate in a Zarr group), a Zarr
    array or a group holding ``label``, or a ``.npy`` file. An absent chunk of a Zarr array is an
    error unless ``fill_missing`` (see :class:`~rocketstream.storage.zarrstore.CheckedArray`).

    Parameters
    ----------
    spec : str or os.PathLike
        The label spec (paths or fsspec URLs).
    fill_missing : bool, default False
        Read absent Zarr chunks as the fill value.

    Returns
    -------
    numpy.ndarray
        The labels (strings as fixed-width unicode).

    Raises
    ------
    FileNotFoundError
        Nothing at the path.
    InputError
        Not readable as labels: a bad ``.npy`` file, not Zarr, a missing ``NAME``, or a group named
        where an array is needed.
    MissingChunkError
        A chunk of the Zarr array is absent.

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.api.predict import load_labels
    >>> np.save("y.npy", np.array(["walk", "rest", "walk"]))
    >>> load_labels("y.npy")
    array(['walk', 'rest', 'walk'], dtype='<U4')
    """
    text = str(spec)
    store, name = split_label_spec(text)
    loc = resolve(store)
    where = loc.display
    if store.endswith(".npy"):
        if name is not None:
            raise InputError(f"{redact(text)}: a .npy file holds one array; drop ':{name}'")
        try:
            return labels_array(np.load(loc.target, allow_pickle=False))
        except FileNotFoundError:
            raise FileNotFoundError(f"labels file not found: {where}") from None
        except (ValueError, EOFError, OSError) as exc:
            what = f"labels file {where} is empty" if isinstance(exc, EOFError) else \
                f"cannot read labels from {where} ({exc})"
            raise InputError(f"{what}; save them with numpy.save as a plain (non-object) array") from exc
    if not loc.url and not os.path.exists(loc.target):
        raise FileNotFoundError(f"labels not found: {where}; give STORE.zarr:NAME, a Zarr array or "
                                "a .npy file")
    try:
        node = zarr.open(loc.target, mode="r", use_consolidated=False)
    except Exception as exc:
        raise InputError(f"cannot open {where} as Zarr ({redact(str(exc))}); give STORE.zarr:NAME or a .npy "
                         "file") from exc
    if isinstance(node, zarr.Group):
        name = name or "label"
        if name not in node:
            names = sorted(k for k, _ in node.arrays())
            raise InputError(f"no {name!r} array in {where}; it holds {names}: name one as {where}:NAME")
        node = node[name]
    elif name is not None:
        raise InputError(f"{where} is a single Zarr array; drop ':{name}'")
    if not isinstance(node, zarr.Array):
        raise InputError(f"{redact(text)} is a Zarr group, not an array of labels")
    return labels_array(read_checked(node, f"labels {where}" + (f":{name}" if name else ""), fill_missing))


# ----------------------------------------------------------------------------------------- evaluation
def _metrics_classification(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    classes = np.unique(np.concatenate([true, pred])) if true.dtype.kind == pred.dtype.kind else None
    if classes is None:  # e.g. int predictions vs str labels: compare as text
        true, pred = true.astype(str), pred.astype(str)
        classes = np.unique(np.concatenate([true, pred]))
    t = np.searchsorted(classes, true)
    p = np.searchsorted(classes, pred)
    cm = np.zeros((classes.size, classes.size), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    correct = int(np.trace(cm))
    return {"task": "classification", "n": int(true.size), "correct": correct,
            "accuracy": correct / true.size, "classes": classes.tolist(), "confusion_matrix": cm.tolist()}


def _metrics_regression(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    pred = pred.astype(np.float64).reshape(true.shape[0], -1)
    true = true.astype(np.float64).reshape(true.shape[0], -1)
    if pred.shape != true.shape:
        raise InputError(f"predictions have shape {pred.shape} but the targets {true.shape}")
    err = pred - true
    ss_res = (err**2).sum(axis=0)
    ss_tot = ((true - true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    return {"task": "regression", "n": int(true.shape[0]), "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))), "r2": float(np.mean(r2))}


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short human-readable report of :func:`evaluate`'s result.

    Parameters
    ----------
    metrics : dict
        What :func:`evaluate` returns.

    Returns
    -------
    str
        Accuracy and confusion matrix (classification), or RMSE, MAE and R^2 (regression).
    """
    if metrics["task"] == "regression":
        return (f"n = {metrics['n']}\nRMSE = {metrics['rmse']:.6g}\nMAE  = {metrics['mae']:.6g}\n"
                f"R^2  = {metrics['r2']:.6g}")
    names = [str(c) for c in metrics["classes"]]
    cm = metrics["confusion_matrix"]
    width = max(5, *(len(s) for s in names), *(len(str(v)) for row in cm for v in row))
    lines = [f"accuracy = {metrics['accuracy']:.4f} ({metrics['correct']}/{metrics['n']})",
             "confusion matrix (rows: true class, columns: predicted class):",
             " " * width + " " + " ".join(f"{s:>{width}}" for s in names)]
    for s, row in zip(names, cm, strict=True):
        lines.append(f"{s:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def _stored_labels(group: zarr.Group) -> np.ndarray:
    """The input's ``label`` coordinate that a predictions store carries."""
    name = dict(group.attrs)[ATTR].get("input_coords", {}).get("label")
    if name is None or name not in group:
        raise InputError("the predictions store carries no 'label' coordinate of its input (the input had "
                         "none); pass the true labels with labels= / --labels SPEC")
    return labels_array(read_checked(group[name], f"the {name!r} coordinate of the predictions store"))


def evaluate(
    predictions: str | os.PathLike | zarr.Group | Any,
    labels: Any = None,
    *,
    task: str | None = None,
    verbose: bool = True,
    fill_missing: bool = False,
) -> dict[str, Any]:
    """Score predictions against the true labels (or targets); prints the report unless ``verbose=False``.

    Parameters
    ----------
    predictions : str, os.PathLike, zarr.Group or array-like
        A predictions store (path or group) from :func:`predict`, or an array of predicted labels / values.
    labels : str, os.PathLike or array-like, optional
        An array-like (NumPy, Zarr, Dask, xarray) or a label spec string for :func:`load_labels`.
        Default: the input's ``label`` coordinate that the predictions store carries (the labels of
        the data that was predicted, e.g. as ``rocketstream ingest`` writes them).
    task : {"classification", "regression"}, optional
        Default: the store's task, else regression for float predictions and labels.
    verbose : bool, default True
        Print :func:`format_metrics` of the result.
    fill_missing : bool, default False
        Read absent Zarr label chunks as the fill value.

    Returns
    -------
    dict
        Classification: ``accuracy``, ``correct``, ``n``, ``classes`` and ``confusion_matrix`` (rows
        true, columns predicted); regression: ``n``, ``rmse``, ``mae`` and ``r2``; both: ``task``.

    Raises
    ------
    InputError
        A ``task`` other than the store's, different numbers of predictions and labels, no predictions,
        or labels of the wrong shape or dtype.
    FileNotFoundError
        No store or labels at a path.
    StoreError
        Not a complete predictions store.

    Examples
    --------
    >>> from rocketstream import evaluate
    >>> metrics = evaluate([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], verbose=False)
    >>> metrics["task"], round(metrics["rmse"], 3)
    ('regression', 0.289)

    For the store of :func:`predict`, with the labels stored beside the test data:

    >>> metrics = evaluate("pred.zarr", "test.zarr:label", verbose=False)
    >>> sorted(metrics)
    ['accuracy', 'classes', 'confusion_matrix', 'correct', 'n', 'task']
    """
    if isinstance(predictions, (str, os.PathLike, zarr.Group)):
        group = open_predictions(predictions)
        stored_task = dict(group.attrs)[ATTR]["task"]
        if task is not None and task != stored_task:
            raise InputError(f"task={task!r} but the store holds {stored_task} predictions")
        task = stored_task
        pred = labels_array(group["label" if task == "classification" else "value"])
        if labels is None:
            labels = _stored_labels(group)
    else:
        pred = labels_array(predictions)
    if labels is None:
        raise InputError("no labels to evaluate against: pass labels= / --labels SPEC")
    true = (load_labels(labels, fill_missing) if isinstance(labels, (str, os.PathLike))
            else labels_array(labels))
    if true.shape[0] != pred.shape[0]:
        raise InputError(f"{pred.shape[0]} predictions but {true.shape[0]} labels; pass the labels of the "
                         "predicted samples, in order")
    if pred.shape[0] == 0:
        raise InputError("nothing to evaluate: no predictions")
    if task is None:
        task = "regression" if pred.dtype.kind == "f" and true.dtype.kind == "f" else "classification"
    if task == "classification":
        if true.ndim != 1 or pred.ndim != 1:
            raise InputError(f"classification labels must be 1-D, got {true.shape} and {pred.shape}")
        metrics = _metrics_classification(pred, true)
    elif task == "regression":
        if true.dtype.kind not in "fiub":
            raise InputError(f"regression targets must be numeric, got dtype {true.dtype}")
        metrics = _metrics_regression(pred, true)
    else:
        raise InputError(f"task must be 'classification' or 'regression', got {task!r}")
    if verbose:
        print(format_metrics(metrics))
    return metrics


__all__ = ["evaluate", "format_metrics", "labels_array", "load_head", "load_labels", "load_predictions",
           "open_predictions", "predict", "split_label_spec"]
