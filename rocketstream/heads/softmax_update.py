"""Continuing a softmax head on the rows appended to its features store since it learned (``train --update``).

The checkpoint directory holds the head (``head.npz``, the best epoch's weights) and ``checkpoint.pt``
(Adam's state, the learning-rate schedule, the standardisation). An update starts from the head's
weights with that optimiser and schedule state and the first training's standardisation (feature mean
and scale; for regression the targets' mean and scale), and runs ``epochs`` epochs over the new rows
only, ``[n_learned, n)``: a seeded ``validation_fraction`` of them is held out for the learning-rate
schedule, early stopping and the choice of the best epoch, as in a first training. Nothing of the old
rows is read but a few rows at their ends and the chunk digests (the identity check).

The update's checkpoints go to the same directory after every epoch and record the rows they cover
(``config["update"]``: ``from_row``, ``to_row``, ``epochs``, the identity of rows ``[0, to_row)``), so a
killed update is finished by running it again on the same features, and the next update starts where
this one ended. The classes are the head's: a class first seen in the new rows has no output to learn
(train afresh).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rocketstream.errors import CheckpointError, IdentityMismatchError, InputError, NotFoundError

from .checkpoint import CURVE_NAME, HEAD_NAME, cpu_state, load_checkpoint
from .folded import check_rows, rows_identity
from .loader import FeatureSource, model_fingerprint
from .plots import plot_history
from .softmax import SoftmaxHead
from .softmax_parts import Progress, Rows, Targets, run_fingerprint, split_rows
from .targets import as_label_array, as_targets


def _rows(source: FeatureSource, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of ``source`` as an array :class:`FeatureSource` reads block by block."""
    if source.kind == "numpy":
        return source.data[start:stop]
    return source.to_dask()[start:stop]


def _fixed_targets(rows: Rows, head: SoftmaxHead) -> Targets:
    """The new rows' targets in the head's terms: its classes, or its target standardisation."""
    if head.classes_ is not None:
        classes = np.asarray(head.classes_)
        found = np.unique(rows.labels)
        unknown = found[~np.isin(found, classes)]
        if unknown.size:
            raise InputError(f"the new rows hold classes {unknown[:5].tolist()} the softmax head has no "
                             f"output for (it knows {classes.tolist()}); train afresh with --overwrite / "
                             "overwrite=True")
        codes = torch.from_numpy(np.searchsorted(classes, rows.labels).astype(np.int64))
        return Targets(codes, codes, classes.size, nn.CrossEntropyLoss(), classes=classes)
    y = as_targets(rows.labels)
    if (y.ndim == 1) != head.target_1d_ or (y.ndim == 2 and y.shape[1] != head.weight_.shape[0]):
        raise InputError(f"the new targets have shape {y.shape[1:]} per row, unlike those the head learned")
    y2 = y[:, None] if y.ndim == 1 else y
    t = torch.from_numpy(((y2 - head.y_mean_) / head.y_scale_).astype(np.float32))
    return Targets(t, t, y2.shape[1], nn.MSELoss(), y_mean=head.y_mean_, y_scale=head.y_scale_,
                   target_1d=head.target_1d_)


def _check_first_rows(saved_config: dict, source: FeatureSource, labels: np.ndarray, n: int) -> None:
    """The first training records a fingerprint of its rows' ends and labels: compare it."""
    window = FeatureSource(_rows(source, 0, n))
    head = labels[:n]
    candidates = [head, np.asarray(head.tolist())]  # the labels' width may have grown with new rows
    if not any(run_fingerprint(window, c) == saved_config["fingerprint"] for c in candidates):
        raise IdentityMismatchError(f"the first {n} rows (or their labels) differ from those the softmax "
                                    "head learned from; an update continues on rows appended to the same "
                                    "features store: pass that store, or train afresh with --overwrite")


def update_softmax(
    checkpoint_dir: str | os.PathLike,
    features: Any,
    labels: Any,
    *,
    epochs: int = 50,
    validation_fraction: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    model: Any = None,
) -> SoftmaxHead:
    """Continue the softmax head of ``checkpoint_dir`` on the rows appended to its features since.

    Parameters
    ----------
    checkpoint_dir : str or os.PathLike
        The head's checkpoint directory (``checkpoint.pt`` and ``head.npz``).
    features : array-like
        The grown features (a features store, xarray, Zarr, NumPy or Dask array): the first rows are
        those the head learned from, the rest are new.
    labels : array-like
        The labels (or targets) of every row.
    epochs : int, default 50
        Epochs over the new rows (early stopping applies).
    validation_fraction : float, optional
        Share of the new rows held out; default: the first training's (0.1 if it was given a
        validation set).
    device : str or torch.device, optional
        Where to train (CUDA where present by default).
    progress : bool, default False
        Show a progress bar.
    model : MiniRocketParameters or str, optional
        The model that made the features, when they do not record it.

    Returns
    -------
    SoftmaxHead
        The continued head (saved as ``head.npz`` in ``checkpoint_dir``); ``rows_added_`` is the
        number of new rows (0: nothing to do, the head is returned as it is).

    Raises
    ------
    NotFoundError
        No checkpoint or head in ``checkpoint_dir``.
    CheckpointError
        A damaged checkpoint, a first training that did not finish, or an interrupted update run again
        on other features or settings.
    IdentityMismatchError
        The leading rows, their labels or the model differ from those the head learned from.
    InputError
        Classes the head does not know, or bad labels.
    """
    ckpt = Path(checkpoint_dir)
    saved = load_checkpoint(ckpt)
    if saved is None or not (ckpt / HEAD_NAME).is_file():
        raise NotFoundError(f"{ckpt} holds no softmax checkpoint and head to continue; train the head first "
                            "(without --update)")
    learned_head = SoftmaxHead.load(ckpt / HEAD_NAME)
    config = saved["config"]
    previous = config.get("update")
    resuming = False
    source = FeatureSource(features)
    n = source.n_samples
    labels = as_label_array(labels, n)
    made_by = model_fingerprint(source, model) or learned_head.model_fingerprint_
    if learned_head.model_fingerprint_ and made_by != learned_head.model_fingerprint_:
        raise IdentityMismatchError(f"the features were made by model {made_by[:12]} but the softmax head "
                                    f"learned from model {learned_head.model_fingerprint_[:12]}")
    if previous is None:
        if len(learned_head.history_.get("epoch", [])) != saved["epoch"]:
            raise CheckpointError(f"the training in {ckpt} did not finish; finish it with --resume / "
                                  "resume=True before updating")
        start = int(config["n_samples"])
        if source.n_features != config["n_features"] or n < start:
            raise InputError(f"the features are {n} x {source.n_features} but the head learned from "
                             f"{start} x {config['n_features']}; pass the grown features store")
        _check_first_rows(config, source, labels, start)
    else:  # the last update covered rows [0, to_row); if it was interrupted, it is resumed on them
        check_rows(previous["identity"], source, labels, made_by, "the softmax head")
        resuming = not saved["stopped"] and saved["epoch"] < previous["epochs"]
        start = int(previous["from_row"] if resuming else previous["to_row"])
    if n == start:
        learned_head.n_samples_, learned_head.rows_added_ = n, 0
        return learned_head
    if validation_fraction is None:
        first = config["validation_fraction"]
        validation_fraction = 0.1 if first is None else first
    same = {k: config[k] for k in ("batch_size", "lr", "seed", "task", "block_rows", "lr_patience",
                                   "stop_patience") if config.get(k) is not None}
    same["label_smoothing"] = config.get("label_smoothing") or 0.0  # older checkpoints: trained without
    head = SoftmaxHead(epochs=epochs, validation_fraction=validation_fraction, device=device,
                       checkpoint_dir=ckpt, resume=True, progress=progress, **same)
    head._check_params()
    new_source = FeatureSource(_rows(source, start, n), min_block_rows=head.block_rows)
    rows = split_rows(new_source, labels[start:n], None, validation_fraction, head.seed, head.block_rows)
    targets = _fixed_targets(rows, learned_head)
    run = {**head._config(rows, targets),
           "update": {"from_row": start, "to_row": n, "epochs": int(epochs),
                      "identity": rows_identity(source, labels, n, made_by)}}
    mean, scale = saved["mean"].numpy(), saved["scale"].numpy()
    trainer = head._trainer(rows, targets, mean, scale)
    if resuming:
        if run != config:
            raise CheckpointError(f"an update of rows {start}-{previous['to_row'] - 1} in {ckpt} did not "
                                  "finish; run it again on the same features and settings to finish it")
        state = head._start(trainer, saved)
    else:
        trainer.model.linear.load_state_dict({"weight": torch.from_numpy(learned_head.weight_),
                                              "bias": torch.from_numpy(learned_head.bias_)})
        trainer.optimizer.load_state_dict(saved["optimizer"])
        trainer.scheduler.load_state_dict(saved["scheduler"])
        state = Progress(cpu_state(trainer.model.linear.state_dict()))
    head._epoch_loop(trainer, state, run, mean, scale)
    head._set_fitted(state.best_model["weight"].numpy(), state.best_model["bias"].numpy(), mean, scale,
                     targets.classes, targets.y_mean, targets.y_scale, targets.target_1d, state.history,
                     state.best_epoch, made_by)
    head.n_samples_, head.rows_added_ = n, n - start
    plot_history(head.history_, ckpt / CURVE_NAME)
    head.save(ckpt / HEAD_NAME, overwrite=True)
    return head


__all__ = ["update_softmax"]
