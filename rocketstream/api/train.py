"""Training a head from a features store: what ``rocketstream train`` does, as one library function.

:func:`train_head` opens the features (a features store, read through its verifying reader, or a
``.npy`` array), finds the labels (a label spec, an array, or the store's own ``label`` coordinate),
checks every output before reading anything (the head file and checkpoint directory must not overlap
an input, and only a head file is ever replaced), trains a ridge or softmax head, and saves it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.errors

from ..errors import InputError, NotFoundError, StoreError
from ..heads import Head, RidgeHead
from ..heads.ridge_stats import stats_path
from ..heads.targets import infer_task
from ..storage.features import FeatureStore
from ..storage.locations import Location, check_outputs, resolve
from ..storage.outputs import existing_output
from ..storage.zarrstore import read_checked, recorded_task

HEAD_KINDS = ("ridge", "softmax")


def head_path(path: str | os.PathLike) -> Path:
    """The head file ``path`` with its ``.npz`` suffix (added when missing)."""
    out = resolve(path).path
    return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")


def open_training_features(features: Any, fill_missing: bool = False
                           ) -> tuple[Any, np.ndarray | None, str | None]:
    """``(features, the store's own labels or None, the task the store records or None)``.

    Parameters
    ----------
    features : str, os.PathLike, FeatureStore or array-like
        A features store (path or handle) from ``rocketstream transform``, a ``.npy`` file of
        (n_samples, n_features), or any array :class:`~rocketstream.heads.FeatureSource` accepts.
    fill_missing : bool, default False
        Read absent chunks of the store's ``label`` coordinate as its fill value.

    Returns
    -------
    tuple
        The features (a store's come through :class:`~rocketstream.storage.features.VerifiedFeatures`,
        so every chunk read is checked against its sha256), the labels the store holds, if any, and
        the task recorded with its input (see ``rocketstream ingest``), if any.

    Raises
    ------
    NotFoundError
        Nothing at the path.
    StoreError
        The store is not a features store, or not finished.
    """
    if not isinstance(features, (str, os.PathLike, FeatureStore)):
        return features, None, None
    if isinstance(features, FeatureStore):
        store = features
    else:
        loc = resolve(features)
        if str(features).endswith(".npy"):
            try:
                return np.load(loc.target, mmap_mode="r", allow_pickle=False), None, None
            except FileNotFoundError:
                raise NotFoundError(f"features not found: {loc}") from None
        if not loc.url and not os.path.exists(loc.target):
            raise NotFoundError(f"features not found: {loc}; make them with `rocketstream transform`")
        store = FeatureStore.open(loc)
    done = store.done()
    if not done.all():
        raise StoreError(f"features store {store.display} is incomplete ({int(done.sum())}/{done.size} "
                         "chunks); finish it with `rocketstream transform ... --resume`")
    labels = None
    if "label" in store.group:
        from .predict import labels_array

        labels = labels_array(read_checked(store.group["label"], f"the 'label' coordinate of {store.display}",
                                           fill_missing))
    return store.verified(), labels, store.meta.get("task")


def _label_location(spec: Any) -> Location | None:
    """Where a label spec's data lives (``STORE.zarr:NAME`` -> the store), for the overlap check."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    from .predict import split_label_spec

    return resolve(split_label_spec(str(spec))[0])


def train_head(
    features: Any,
    labels: Any = None,
    *,
    head: str = "auto",
    task: str | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    epochs: int = 50,
    batch_size: int | None = None,
    lr: float = 1e-4,
    seed: int = 0,
    validation_fraction: float | None = None,
    device: Any = None,
    progress: bool = False,
    fill_missing: bool = False,
    verbose: bool = False,
    update: bool = False,
    reselect_alpha: bool = True,
    keep_stats: bool = True,
) -> Head:
    """Train a ridge or softmax head on a features store (or array) and save it.

    Parameters
    ----------
    features : str, os.PathLike, FeatureStore or array-like
        See :func:`open_training_features`.
    labels : str, os.PathLike or array-like, optional
        A label spec for :func:`~rocketstream.api.predict.load_labels` (``STORE.zarr:NAME``, a Zarr
        array or a ``.npy`` file) or an array; default: the features store's own ``label`` coordinate.
    head : {"auto", "ridge", "softmax"}, default "auto"
        Exact ridge with leave-one-out alpha, or a softmax / linear head trained with Adam; "auto"
        chooses by the training set's size (:func:`~rocketstream.heads.choice.choose_head`: ridge below
        10,000 series, as the MiniRocket authors advise, unless ridge stays cheap), or, with
        ``update``, the kind of the head being updated.
    task : {"classification", "regression"}, optional
        Default: the task recorded with the data (``rocketstream ingest`` records it), else regression
        for real-valued targets and classification otherwise (see
        :func:`~rocketstream.heads.targets.infer_task`).
    output : str or os.PathLike, optional
        The head file to write (``.npz`` added when missing); replaced only with ``overwrite`` (or
        ``resume``), and only if it is a head file.
    overwrite, resume : bool
        Replace an existing head / checkpoint, or (softmax) continue from the checkpoint.
    checkpoint_dir : str or os.PathLike, optional
        Softmax: checkpoints, ``metrics.json`` and the training curve (default: ``<output>_checkpoint``
        beside ``output``).
    epochs, batch_size, lr, seed, validation_fraction, device, progress
        Softmax training settings (see :class:`~rocketstream.heads.SoftmaxHead`).
    fill_missing : bool, default False
        Read absent chunks of a Zarr labels array as its fill value.
    verbose : bool, default False
        Print a line for each choice made for the user (the task when inferred).
    update : bool, default False
        Fold the rows appended to ``features`` since the head in ``output`` learned into it, without
        recomputing what the old rows gave: ridge with the statistics kept beside the head
        (:meth:`~rocketstream.heads.RidgeHead.update`; equal to a fit on all rows), softmax by
        continuing its checkpoint on the new rows for ``epochs`` epochs
        (:func:`~rocketstream.heads.softmax_update.update_softmax`). ``head`` must name the kind the
        file holds; ``features`` is the grown store and the labels cover every row. Nothing is written
        when there are no new rows (``rows_added_`` is 0).
    reselect_alpha : bool, default True
        Ridge update: choose alpha again by leave-one-out (one more pass over all rows); False keeps
        alpha and reads only the new rows.
    keep_stats : bool, default True
        Ridge: write the statistics that ``update`` needs beside the head (``HEAD.stats.npz``, about
        4 F^2 bytes for F features: 400 MB at 10,000); False writes none and removes an old one. False
        is refused with ``head='softmax'`` and means nothing when ``'auto'`` picks softmax.

    Returns
    -------
    Head
        The fitted head; it records the fingerprint of the model that made the features.

    Raises
    ------
    InputError
        Bad combination of options, or labels that do not fit the features.
    UnsafeOutputError
        ``output`` or the checkpoint directory overlaps an input, or ``output`` is not a head file.
    FileExistsError
        ``output`` exists and neither ``overwrite`` nor ``resume`` is given.

    Examples
    --------
    >>> from rocketstream.api.train import train_head
    >>> head = train_head("features.zarr", "data.zarr:label", output="head.npz")  # doctest: +SKIP
    >>> head.info()["alpha"]  # doctest: +SKIP
    """
    if head not in (*HEAD_KINDS, "auto"):
        raise InputError(f"head must be 'auto' or one of {HEAD_KINDS}, got {head!r}")
    if head == "softmax" and not keep_stats:  # (with head='auto' it applies when ridge is chosen)
        raise InputError("keep_stats=False / --no-stats applies to ridge heads: a softmax head keeps a "
                         "checkpoint, not statistics; drop the option")
    if head == "auto":
        head = _auto_kind(features, task, output if update else None, verbose)
    if resume and overwrite:
        raise InputError("resume and overwrite exclude each other: resume continues a training run, "
                         "overwrite starts afresh; pass only one")
    if head == "ridge" and resume:
        raise InputError("resume=True / --resume applies to head='softmax' / --head softmax only (ridge "
                         "trains in one pass)")
    if update and (overwrite or resume or output is None):
        raise InputError("update=True / --update continues the head in output / --output: it needs one, and "
                         "excludes overwrite (train afresh) and resume (run the update again to finish it)")
    if not reselect_alpha and not (update and head == "ridge"):
        raise InputError("reselect_alpha=False / --keep-alpha applies to a ridge update (--update) only")
    out = head_path(output) if output is not None else None
    ckpt = None
    if head == "softmax" and (checkpoint_dir is not None or out is not None):
        ckpt = resolve(checkpoint_dir).path if checkpoint_dir is not None else \
            out.with_name(out.stem + "_checkpoint")
    stats = stats_path(out) if out is not None and head == "ridge" else None
    _check_outputs(features, labels, out, ckpt, overwrite or resume or update, stats)
    if update and not existing_output(resolve(out), "head"):
        raise NotFoundError(f"no head file at {out} to update; train one first (without --update)")
    if ckpt is not None and (ckpt / "checkpoint.pt").exists() and not (resume or overwrite or update):
        raise FileExistsError(f"{ckpt} already holds a checkpoint; pass --resume / resume=True to continue "
                              "it or --overwrite / overwrite=True to start afresh")
    if task not in (None, "classification", "regression"):
        raise InputError(f"task must be 'classification' or 'regression', got {task!r}")
    data, own, recorded = open_training_features(features, fill_missing)
    if labels is None and own is None:
        raise InputError(f"{features} has no 'label' coordinate; pass --labels STORE.zarr:NAME or a .npy "
                         "file")
    if labels is None:
        labels = own
    elif isinstance(labels, (str, os.PathLike)):
        from .predict import load_labels

        recorded = _spec_task(labels)
        labels = load_labels(labels, fill_missing=fill_missing)
    else:
        recorded = None
    if update:
        return _update_head(head, out, ckpt, data, labels, task, reselect_alpha, keep_stats, epochs=epochs,
                            validation_fraction=validation_fraction, device=device, progress=progress)
    if task is None:
        task, reason = infer_task(labels, recorded)
        if verbose:
            other = "classification" if task == "regression" else "regression"
            print(f"task {reason} (--task {other} / task={other!r} overrides)")
    if head == "ridge":
        fitted: Head = RidgeHead(task=task).fit(data, labels)
    else:
        from ..heads import SoftmaxHead  # torch: only the softmax head computes with it

        fitted = SoftmaxHead(checkpoint_dir=ckpt, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             validation_fraction=validation_fraction, task=task, device=device,
                             resume=resume, overwrite=overwrite, progress=progress).fit(data, labels)
    if out is not None:
        _save(fitted, out, keep_stats)
    return fitted


def _save(fitted: Head, out: Path, keep_stats: bool) -> None:
    """Write a trained head over ``out`` (a ridge head's statistics beside it only with ``keep_stats``)."""
    if isinstance(fitted, RidgeHead):
        fitted.save(out, overwrite=True, stats=keep_stats)
    else:
        fitted.save(out, overwrite=True)


def _auto_kind(features: Any, task: str | None, updating: Any, verbose: bool) -> str:
    """The head kind ``head="auto"`` means: the updated head's kind, else :func:`choose_head` for the
    shape of the features (read from the store's metadata or the array, nothing else)."""
    from ..heads import load_head
    from ..heads.choice import choose_head

    if updating is not None:
        found = head_path(updating)
        return load_head(found).kind if existing_output(resolve(found), "head") else "ridge"
    if isinstance(features, FeatureStore):
        shape = (features.n_samples, features.n_features)
    elif isinstance(features, (str, os.PathLike)):
        loc = resolve(features)
        if str(features).endswith(".npy"):
            try:
                shape = np.load(loc.target, mmap_mode="r", allow_pickle=False).shape
            except FileNotFoundError:
                raise NotFoundError(f"features not found: {loc}") from None
        else:
            if not loc.url and not os.path.exists(loc.target):
                raise NotFoundError(f"features not found: {loc}; make them with `rocketstream transform`")
            store = FeatureStore.open(loc)
            shape = (store.n_samples, store.n_features)
    else:
        shape = np.shape(features)
    if len(shape) != 2:
        raise InputError(f"features must be (n_samples, n_features), got shape {tuple(shape)}")
    kind, reason = choose_head(int(shape[0]), int(shape[1]), task or "classification")
    if verbose:
        print(f"head {reason} (--head ridge / --head softmax overrides)")
    return kind


def _update_head(kind: str, out: Path, ckpt: Path | None, data: Any, labels: Any, task: str | None,
                 reselect_alpha: bool, keep_stats: bool, **softmax: Any) -> Head:
    """Update the head in ``out`` with the new rows of ``data`` and save it (see :func:`train_head`)."""
    from ..heads import load_head

    found = load_head(out)
    if found.kind != kind or task not in (None, found.task):
        raise InputError(f"{out} holds a {found.kind} {found.task} head; an update continues it as it is "
                         f"(pass head={found.kind!r} / --head {found.kind} and no other task)")
    if kind == "ridge":
        fitted: Head = RidgeHead.load(out, stats=True).update(data, labels, reselect_alpha=reselect_alpha)
    else:
        from ..heads.softmax_update import update_softmax

        fitted = update_softmax(ckpt, data, labels, **softmax)
    if fitted.rows_added_:
        _save(fitted, out, keep_stats)
    return fitted


def _spec_task(spec: str | os.PathLike) -> str | None:
    """The task recorded in the Zarr store a label spec names (None for ``.npy`` and the like)."""
    from .predict import split_label_spec

    store, name = split_label_spec(str(spec))
    if name is None:
        return None
    try:
        group = zarr.open_group(resolve(store).target, mode="r", use_consolidated=False)
        return recorded_task(group[name])
    except (FileNotFoundError, KeyError, zarr.errors.BaseZarrError):
        return None


def _check_outputs(features: Any, labels: Any, out: Path | None, ckpt: Path | None, replace: bool,
                   stats: Path | None = None) -> None:
    """Refuse outputs that overlap the inputs, or replace what is not a head, before reading anything."""
    inputs = [(role, loc) for role, loc in (
        ("features", resolve(features) if isinstance(features, (str, os.PathLike)) else None),
        ("labels", _label_location(labels))) if loc is not None]
    outputs = [(role, resolve(p)) for role, p in (("head file", out), ("checkpoint directory", ckpt),
                                                  ("ridge statistics file", stats)) if p is not None]
    check_outputs(outputs, inputs)
    for what, p in (("head file", out), ("statistics file", stats)):
        if p is not None and existing_output(resolve(p), "head") and not replace:
            raise FileExistsError(f"{what} {p} already exists; pass --overwrite / overwrite=True to "
                                  "replace it")


__all__ = ["HEAD_KINDS", "head_path", "open_training_features", "train_head"]
