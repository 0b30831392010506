"""Softmax (or linear regression) head trained out of core from a features store.

The large-data recipe of the MiniRocket authors (minirocket-reference.md section 4): a zero-initialised
``nn.Linear``, ``CrossEntropyLoss`` (``MSELoss`` on standardised targets for regression), Adam at
1e-4, ``ReduceLROnPlateau(factor=0.5, min_lr=1e-8, patience=5)`` on the validation loss, early stopping
after 10 checks without improvement, and the best model by validation loss kept.
Differences: the per-feature mean/std come from all training rows (streamed, float64), not the first
chunk; constant features get scale 1 (not std + 1e-8); validation is checked once per epoch; rows are
shuffled by block and within block with a seeded generator; nothing is cached in RAM except, when it
is small, the validation set. The defaults also differ where the recipe, made for 10,000+ rows, fails
smaller sets (ArrowHead, 36 rows: 0.58 against ridge's 0.86 with a 4-row validation split):

- validation: 10% of the rows up to 2,048, held out only when that is at least 1,000 rows (10,000+
  rows); otherwise none (:func:`~rocketstream.heads.softmax_parts.auto_validation_rows`). Without
  validation rows (by this rule or ``validation_fraction=0``) all ``epochs`` run on all rows, with no
  early stopping; the schedule and the kept epoch follow the training loss;
- minibatch (classification): a power of two giving at least 64 steps per epoch, 32 to 256
  (:func:`~rocketstream.heads.softmax_parts.auto_batch_size`); regression keeps 256;
- label smoothing 0.1 (classification).

On the synthetic demo set at 1,000-2,100 training series these take the softmax head from 1.1-3.4
points below ridge to within 0.6 (benchmarks/RESULTS.md, "Head choice"); explicit values restore the
recipe (``batch_size=256, validation_fraction=0.1, label_smoothing=0``).

:class:`SoftmaxHead` is an estimator (``SoftmaxHead(epochs=...).fit(features, labels)``); its ``fit`` runs
these steps, each a short method or a function of ``softmax_parts.py``: split the rows (validation),
encode the targets, load a checkpoint to resume, build the network / optimiser / loader, run the epoch
loop (a checkpoint after each epoch), then keep the best weights, plot the curve and save ``head.npz``.
:func:`train_softmax` is the same as a function.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rocketstream import config
from rocketstream.config import resolve_device
from rocketstream.core import InputError

from .base import Head, Layout, check_task
from .checkpoint import (
    CURVE_NAME,
    HEAD_NAME,
    check_compatible,
    cpu_state,
    load_checkpoint,
    save_checkpoint,
    write_metrics,
)
from .loader import (
    DEFAULT_BLOCK_ROWS,
    ChunkShuffleLoader,
    FeatureSource,
    model_fingerprint,
    read_blocks,
)
from .moments import feature_moments
from .plots import plot_history
from .softmax_parts import (
    Progress,
    Rows,
    Standardised,
    Targets,
    Validation,
    auto_batch_size,
    encode_targets,
    is_auto,
    metrics,
    run_fingerprint,
    split_rows,
)
from .targets import as_label_array

#: validation rows are kept in RAM when they take at most this many bytes, else streamed each epoch
VALIDATION_CACHE_BYTES = config.VALIDATION_CACHE_BYTES
#: the default label smoothing of classification heads
LABEL_SMOOTHING = 0.1


@dataclass
class _Trainer:
    """The torch side of one training run: network, optimiser, scheduler, minibatches, validation."""

    model: Standardised
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    loader: ChunkShuffleLoader
    validation: Validation | None
    targets: Targets
    device: torch.device
    train_loss: torch.nn.Module  # the targets' loss, with label smoothing for classification


class SoftmaxHead(Head):
    """Softmax classifier (or linear regressor) trained out of core by minibatch Adam.

    A fitted head standardises (``mean_``, ``scale_``) then computes ``x @ weight_.T + bias_``;
    classification heads give class probabilities through a softmax, regression heads map outputs
    back with ``y_mean_ + y_scale_ * output``. Predictions stream the features block by block.
    The hyper-parameters are keyword-only.

    Parameters
    ----------
    epochs : int, default 50
        Epochs; with validation rows, fewer when the validation loss stops improving for
        ``stop_patience`` epochs (early stopping); without, all of them.
    batch_size : int, optional
        Rows per minibatch; default: for classification the largest power of two giving at least 64
        minibatches per epoch, within [32, 256], for regression 256
        (:func:`~rocketstream.heads.softmax_parts.auto_batch_size`).
    lr : float, default 1e-4
        Adam's initial learning rate (halved by ``ReduceLROnPlateau`` after ``lr_patience`` epochs
        without improvement, down to 1e-8).
    seed : int, default 0
        Seeds the validation split and the order of every epoch's minibatches.
    validation_fraction : float, optional
        Rows held out for validation (the schedule, early stopping and the kept epoch) when ``fit`` gets
        no ``validation`` set. Default: 10% up to 2,048 rows when that is at least 1,000 rows (10,000+
        rows), else none (:func:`~rocketstream.heads.softmax_parts.auto_validation_rows`). Without a
        validation split (also 0) the training loss is monitored instead.
    task : {"classification", "regression"}, default "classification"
    device : str or torch.device, optional
        Where to train; by default CUDA where present, else the CPU (see :mod:`rocketstream.config`).
    checkpoint_dir : str or os.PathLike, optional
        Write a checkpoint after every epoch there, plus ``metrics.json``, ``training_curve.png`` and
        the final ``head.npz``.
    resume : bool, default False
        Continue from the checkpoint in ``checkpoint_dir``: the same result as an uninterrupted run.
    overwrite : bool, default False
        Start afresh even though ``checkpoint_dir`` holds a checkpoint.
    progress : bool, default False
        Show a tqdm progress bar (when tqdm is installed).
    block_rows : int, default 4096
        Rows read at a time at least (whole storage chunks).
    lr_patience, stop_patience : int, default 5, 10
        Epochs without improvement before the learning rate is halved / training stops (the latter
        only with validation rows).
    validation_cache_bytes : int, default 64 MiB
        Validation rows are kept on the device when they take at most this, else streamed.
    label_smoothing : float, default 0.1
        Label smoothing of the training loss (classification; validation losses are plain
        cross-entropy). It bounds the logits much as ridge's penalty does: measured, it closes most of
        the remaining gap to ridge below 10,000 rows.

    Attributes
    ----------
    weight_, bias_ : numpy.ndarray
        float32 (n_outputs, n_features) and (n_outputs,): the best epoch's linear layer.
    mean_, scale_ : numpy.ndarray
        float64 per-feature standardisation (from the training rows).
    classes_ : numpy.ndarray or None
        Sorted class labels (classification), None for regression.
    y_mean_, y_scale_ : numpy.ndarray or None
        Target standardisation (regression), None for classification.
    target_1d_ : bool
        The regression targets were 1-D.
    history_ : dict of str to list
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``lr``.
    best_epoch_ : int or None
        The epoch (1-based) whose weights were kept.
    batch_size_ : int
        The minibatch size used (``batch_size`` or the default's choice); set by ``fit``.
    n_validation_ : int
        Validation rows used (held out or given; 0: none, the training loss was monitored); set by ``fit``.
    n_features_in_ : int
    model_fingerprint_ : str or None
        The model whose features the head was trained on, where known: predictions refuse another model.
    """

    kind = "softmax"
    _fitted_attr = "weight_"

    def __init__(
        self,
        *,
        epochs: int = 50,
        batch_size: int | None = None,
        lr: float = 1e-4,
        seed: int = 0,
        validation_fraction: float | None = None,
        task: str = "classification",
        device: str | torch.device | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = False,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        lr_patience: int = 5,
        stop_patience: int = 10,
        validation_cache_bytes: int = VALIDATION_CACHE_BYTES,
        label_smoothing: float = LABEL_SMOOTHING,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.task = task
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.overwrite = overwrite
        self.progress = progress
        self.block_rows = block_rows
        self.lr_patience = lr_patience
        self.stop_patience = stop_patience
        self.validation_cache_bytes = validation_cache_bytes
        self.label_smoothing = label_smoothing

    @classmethod
    def _from_arrays(
        cls,
        weight: np.ndarray,
        bias: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        classes: np.ndarray | None = None,
        y_mean: np.ndarray | None = None,
        y_scale: np.ndarray | None = None,
        target_1d: bool = False,
        history: dict[str, list] | None = None,
        best_epoch: int | None = None,
        model_fingerprint: str | None = None,
    ) -> SoftmaxHead:
        """A fitted head from its arrays (as :meth:`load` reads them); hyper-parameters are the defaults."""
        head = cls(task="classification" if classes is not None else "regression")
        head._set_fitted(weight, bias, mean, scale, classes, y_mean, y_scale, target_1d, history, best_epoch,
                         model_fingerprint)
        return head

    def _set_fitted(self, weight: np.ndarray, bias: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                    classes: np.ndarray | None, y_mean: np.ndarray | None, y_scale: np.ndarray | None,
                    target_1d: bool, history: dict[str, list] | None, best_epoch: int | None,
                    made_by: str | None) -> None:
        """Store the fitted state (every attribute ending in ``_``)."""
        self.weight_ = np.asarray(weight, dtype=np.float32)
        self.bias_ = np.asarray(bias, dtype=np.float32)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.classes_ = classes
        self.y_mean_, self.y_scale_, self.target_1d_ = y_mean, y_scale, bool(target_1d)
        self.history_ = history or {}
        self.best_epoch_ = best_epoch
        self.model_fingerprint_ = made_by
        self.n_features_in_ = int(self.weight_.shape[1])

    @property
    def target_1d(self) -> bool:
        """Alias of ``target_1d_`` (the name older code reads)."""
        return self.target_1d_

    # ------------------------------------------------------------------------------------- fit
    def fit(self, features: Any, labels: Any, model: Any = None,
            validation: tuple[Any, Any] | None = None) -> SoftmaxHead:
        """Train from a (n_samples, n_features) features array; keep the epoch with the best validation loss.

        Parameters
        ----------
        features : array-like
            A features store, xarray DataArray, Zarr, NumPy or Dask array, read one block (at least
            ``block_rows`` rows, whole storage chunks) at a time.
        labels : array-like
            One class label (classification) or target (regression, 1-D or 2-D) per row.
        model : MiniRocketParameters or str, optional
            The model (or its fingerprint) that made the features, when the features do not record it
            (a features store and ``open_features`` do); predictions then refuse another model.
        validation : (features, labels), optional
            A validation set; else a seeded ``validation_fraction`` of the rows is held out (by default
            only from 10,000 rows up).

        Returns
        -------
        SoftmaxHead
            ``self``, fitted.

        Raises
        ------
        InputError
            Bad features or labels (shape, NaN/Inf, fewer than 2 classes, unknown validation labels).
        FileExistsError
            ``checkpoint_dir`` holds a checkpoint and neither ``resume`` nor ``overwrite`` is set.
        CheckpointError
            The checkpoint to resume is damaged or belongs to another run (data or settings).
        IdentityMismatchError
            ``model`` is not the model the features record.
        ValueError
            A bad hyper-parameter.
        """
        self._check_params()
        source = FeatureSource(features, min_block_rows=self.block_rows)
        made_by = model_fingerprint(source, model)
        labels = as_label_array(labels, source.n_samples)
        rows = split_rows(source, labels, validation, self.validation_fraction, self.seed, self.block_rows)
        targets = encode_targets(rows, self.task)
        config = self._config(rows, targets)
        saved = self._saved_state(config)
        if saved is not None:  # the exact statistics the interrupted run used
            mean, scale = saved["mean"].numpy(), saved["scale"].numpy()
        else:
            moments = feature_moments(source, row_mask=rows.train_mask)  # streamed; raises on NaN/Inf
            mean, scale = moments.mean, moments.scale()
        trainer = self._trainer(rows, targets, mean, scale)
        progress = self._start(trainer, saved)
        self._epoch_loop(trainer, progress, config, mean, scale)
        self._set_fitted(progress.best_model["weight"].numpy(), progress.best_model["bias"].numpy(), mean,
                         scale, targets.classes, targets.y_mean, targets.y_scale, targets.target_1d,
                         progress.history, progress.best_epoch, made_by)
        self.n_samples_ = source.n_samples
        self.batch_size_, self.n_validation_ = config["batch_size"], rows.n_validation or 0
        if self.checkpoint_dir is not None:
            plot_history(self.history_, Path(self.checkpoint_dir) / CURVE_NAME)
            self.save(Path(self.checkpoint_dir) / HEAD_NAME, overwrite=True)
        return self

    def _check_params(self) -> None:
        check_task(self.task)
        if self.epochs < 0 or (self.batch_size is not None and self.batch_size < 1) or self.lr <= 0:
            raise ValueError(f"need epochs >= 0, batch_size >= 1 (or None), lr > 0; got {self.epochs}, "
                             f"{self.batch_size}, {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if isinstance(self.validation_fraction, str) and not is_auto(self.validation_fraction):
            raise ValueError(f"validation_fraction must be a number in [0, 1) or None, got "
                             f"{self.validation_fraction!r}")

    def _batch_size(self, rows: Rows) -> int:
        """``batch_size``, or the default's choice for the training rows."""
        if self.batch_size is not None:
            return int(self.batch_size)
        n_train = rows.source.n_samples if rows.train_mask is None else int(rows.train_mask.sum())
        return auto_batch_size(n_train, self.task)

    def _smoothing(self) -> float | None:
        """The label smoothing used (None for regression, where it does not apply)."""
        return float(self.label_smoothing) if self.task == "classification" else None

    def _config(self, rows: Rows, targets: Targets) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed (settings and data identity)."""
        n, n_feat = rows.source.shape
        return {
            "task": self.task, "seed": int(self.seed), "batch_size": self._batch_size(rows),
            "lr": float(self.lr), "n_samples": n, "n_features": n_feat, "n_outputs": int(targets.n_out),
            "block_rows": int(self.block_rows),
            "validation_fraction": None if rows.explicit else (
                "auto" if is_auto(self.validation_fraction) else float(self.validation_fraction)),
            "n_validation": rows.n_validation,
            "classes": None if targets.classes is None else targets.classes.tolist(),
            "lr_patience": int(self.lr_patience), "stop_patience": int(self.stop_patience),
            "label_smoothing": self._smoothing(),
            "fingerprint": run_fingerprint(rows.source, rows.labels),
        }

    def _saved_state(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The checkpoint to resume from (checked against ``config``), or None to start afresh."""
        if self.checkpoint_dir is None:
            return None
        saved = load_checkpoint(self.checkpoint_dir)
        if saved is None:
            return None
        if not self.resume and not self.overwrite:
            raise FileExistsError(
                f"{self.checkpoint_dir} already holds a checkpoint; pass resume=True to continue it or "
                "overwrite=True to start afresh"
            )
        if not self.resume:
            return None
        check_compatible(saved["config"], config, self.checkpoint_dir)
        return saved

    def _trainer(self, rows: Rows, targets: Targets, mean: np.ndarray, scale: np.ndarray) -> _Trainer:
        dev = resolve_device(self.device)
        model = Standardised(mean, scale, targets.n_out, dev)
        optimizer = torch.optim.Adam(model.linear.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, min_lr=1e-8, patience=self.lr_patience
        )
        loader = ChunkShuffleLoader(rows.source, batch_size=self._batch_size(rows), seed=self.seed,
                                    row_mask=rows.train_mask)
        val = None
        if rows.val_source is not None:
            val = Validation(rows.val_source, rows.val_mask, targets.val, self.validation_cache_bytes, dev)
        train_loss = targets.loss_fn
        if self._smoothing():
            train_loss = torch.nn.CrossEntropyLoss(label_smoothing=self._smoothing())
        return _Trainer(model, optimizer, scheduler, loader, val, targets, dev, train_loss)

    @staticmethod
    def _start(trainer: _Trainer, saved: dict[str, Any] | None) -> Progress:
        """The loop's state: fresh, or the checkpoint's (torch states loaded into ``trainer``)."""
        if saved is None:
            return Progress(cpu_state(trainer.model.linear.state_dict()))
        trainer.model.linear.load_state_dict(saved["model"])
        trainer.optimizer.load_state_dict(saved["optimizer"])
        trainer.scheduler.load_state_dict(saved["scheduler"])
        return Progress.from_checkpoint(saved)

    def _epoch_loop(self, trainer: _Trainer, progress: Progress, config: dict[str, Any], mean: np.ndarray,
                    scale: np.ndarray) -> None:
        """Epochs ``progress.epoch + 1 .. epochs`` (until early stopping), a checkpoint after each."""
        bar = self._progress_bar(max(0, self.epochs - progress.epoch) * len(trainer.loader))
        for epoch in range(progress.epoch, self.epochs):
            if progress.stopped:
                break
            train_loss = self._train_epoch(trainer, epoch, bar)
            self._end_epoch(trainer, progress, epoch, train_loss)
            if self.checkpoint_dir is not None:
                self._checkpoint(trainer, progress, config, mean, scale)
        if bar is not None:
            bar.close()

    def _progress_bar(self, total: int) -> Any:
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc="train head", unit="batch")

    @staticmethod
    def _train_epoch(trainer: _Trainer, epoch: int, bar: Any) -> float:
        """One pass over the training minibatches; the mean training loss."""
        model, optimizer, dev = trainer.model, trainer.optimizer, trainer.device
        loss_fn, targets = trainer.train_loss, trainer.targets.train
        model.train()
        total, count = torch.zeros((), dtype=torch.float64, device=dev), 0
        for idx, x in trainer.loader.epoch(epoch):
            xb = torch.from_numpy(x).to(dev, non_blocking=True)
            yb = targets[torch.from_numpy(idx)].to(dev, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * len(idx)  # stays on the device: no sync per minibatch
            count += len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.4g}")
        return float(total) / max(count, 1)

    def _end_epoch(self, trainer: _Trainer, progress: Progress, epoch: int, train_loss: float) -> None:
        """Validate, step the learning-rate schedule, keep the best model and record the epoch."""
        trainer.model.eval()
        val_loss, val_acc = None, None
        if trainer.validation is not None:
            val_loss, val_acc = trainer.validation.evaluate(trainer.model, trainer.targets.loss_fn,
                                                            self.task == "classification")
        monitored = val_loss if val_loss is not None else train_loss
        trainer.scheduler.step(monitored)
        patience = self.stop_patience if trainer.validation is not None else None  # no validation: all epochs
        progress.record(epoch, monitored, lambda: cpu_state(trainer.model.linear.state_dict()), patience,
                        train_loss=train_loss, val_loss=val_loss, val_accuracy=val_acc,
                        lr=trainer.optimizer.param_groups[0]["lr"])

    def _checkpoint(self, trainer: _Trainer, progress: Progress, config: dict[str, Any], mean: np.ndarray,
                    scale: np.ndarray) -> None:
        save_checkpoint(self.checkpoint_dir, {
            "config": config, "epoch": progress.epoch, "model": cpu_state(trainer.model.linear.state_dict()),
            "best_model": progress.best_model, "optimizer": cpu_state(trainer.optimizer.state_dict()),
            "scheduler": trainer.scheduler.state_dict(),
            "best_loss": progress.best_loss, "bad_epochs": progress.bad_epochs, "stopped": progress.stopped,
            "best_epoch": progress.best_epoch, "history": progress.history, "mean": torch.from_numpy(mean),
            "scale": torch.from_numpy(scale),
        })
        write_metrics(self.checkpoint_dir, metrics(config, progress))

    # --------------------------------------------------------------------------------- predict
    def decision_function(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Raw outputs (logits, or standardised regression outputs), streamed block by block.

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : str or torch.device, optional
            Where to compute; by default CUDA where present, else the CPU.

        Returns
        -------
        numpy.ndarray
            float32 (n_samples, n_outputs).

        Raises
        ------
        InputError
            If the features have another number of columns than the head was trained on.
        """
        self._check_fitted()
        source = FeatureSource(features)
        if source.n_features != self.n_features_in_:
            raise InputError(
                f"features have {source.n_features} columns but the head was trained on {self.n_features_in_}"
            )
        dev = resolve_device(device)
        model = Standardised(self.mean_, self.scale_, self.weight_.shape[0], dev)
        with torch.no_grad():
            model.linear.weight.copy_(torch.from_numpy(self.weight_))
            model.linear.bias.copy_(torch.from_numpy(self.bias_))
            out = np.empty((source.n_samples, self.weight_.shape[0]), dtype=np.float32)
            for idx, x in read_blocks(source, range(source.n_blocks)):
                out[idx] = model(torch.from_numpy(x).to(dev)).cpu().numpy()
        return out

    def predict_proba(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Class probabilities (classification heads only).

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : str or torch.device, optional
            Where to compute; by default CUDA where present, else the CPU.

        Returns
        -------
        numpy.ndarray
            float32 (n_samples, n_classes), columns in the order of ``classes_``.

        Raises
        ------
        TypeError
            If the head does regression.
        """
        self._check_fitted()
        if self.classes_ is None:
            raise TypeError("predict_proba is for classification heads; this head does regression")
        logits = torch.from_numpy(self.decision_function(features, device))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Predicted labels (classification) or targets (regression).

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : str or torch.device, optional
            Where to compute; by default CUDA where present, else the CPU.

        Returns
        -------
        numpy.ndarray
            (n_samples,) labels, or float64 (n_samples[, n_targets]) values.
        """
        out = self.decision_function(features, device)
        if self.classes_ is not None:
            return self.classes_[out.argmax(axis=1)]
        y = out.astype(np.float64) * self.y_scale_ + self.y_mean_
        return y[:, 0] if self.target_1d_ else y

    def _class_scores(self, features: Any, device: Any) -> tuple[str, np.ndarray]:
        return "proba", self.predict_proba(features, device=device).astype(np.float32)

    def _score_layout(self, n: int, chunk: int, n_classes: int) -> Layout:
        return {"proba": ((n, n_classes), (chunk, n_classes), "float32", ("sample", "class"))}

    def _n_targets(self) -> int | None:
        return None if self.target_1d_ else int(self.weight_.shape[0])

    def _info_extra(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch_}

    # -------------------------------------------------------------------------------------- io
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"weight": self.weight_, "bias": self.bias_, "mean": self.mean_, "scale": self.scale_}
        if self.classes_ is not None:
            arrays["classes"] = self.classes_
        else:
            arrays["y_mean"], arrays["y_scale"] = self.y_mean_, self.y_scale_
        meta = {"target_1d": self.target_1d_, "history": self.history_, "best_epoch": self.best_epoch_}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], a: dict[str, np.ndarray]) -> SoftmaxHead:
        """Hyper-parameters stay at their defaults (the file does not hold them); ``task`` follows
        the arrays."""
        return cls._from_arrays(
            a["weight"], a["bias"], a["mean"], a["scale"], classes=a.get("classes"), y_mean=a.get("y_mean"),
            y_scale=a.get("y_scale"), target_1d=meta["target_1d"], history=meta["history"],
            best_epoch=meta["best_epoch"], model_fingerprint=meta.get("model_fingerprint"),
        )


def train_softmax(features: Any, labels: Any, *, validation: tuple[Any, Any] | None = None, model: Any = None,
                  **params: Any) -> SoftmaxHead:
    """Train a softmax (or linear regression) head: ``SoftmaxHead(**params).fit(features, labels, ...)``.

    Parameters
    ----------
    features, labels : array-like
        As for :meth:`SoftmaxHead.fit`.
    validation : (features, labels), optional
        A validation set (else a seeded ``validation_fraction`` of the rows, by default from 10,000 rows
        up).
    model : MiniRocketParameters or str, optional
        The model that made the features, when the features do not record it.
    **params
        The hyper-parameters of :class:`SoftmaxHead` (``checkpoint_dir``, ``epochs``, ``batch_size``,
        ``lr``, ``seed``, ``validation_fraction``, ``task``, ``device``, ``resume``, ``overwrite``,
        ``progress``, ``block_rows``, ``lr_patience``, ``stop_patience``, ``validation_cache_bytes``,
        ``label_smoothing``); leave out any to use the default.

    Returns
    -------
    SoftmaxHead
        The fitted head (the epoch with the best validation loss).

    Raises
    ------
    TypeError
        An unknown keyword.
    InputError, FileExistsError, CheckpointError, ValueError
        As for :meth:`SoftmaxHead.fit`.
    """
    return SoftmaxHead(**params).fit(features, labels, model=model, validation=validation)
