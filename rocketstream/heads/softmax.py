"""Softmax (or linear regression) head trained out of core from a features store.

The large-data recipe of the MiniRocket authors (minirocket-reference.md section 4): a zero-initialised
``nn.Linear``, ``CrossEntropyLoss`` (``MSELoss`` on standardised targets for regression), Adam,
minibatches of 256, ``ReduceLROnPlateau(factor=0.5, min_lr=1e-8, patience=5)`` on the validation
loss, early stopping after 10 checks without improvement, and the best model by validation loss kept.
Differences: the per-feature mean/std come from all training rows (streamed, float64), not the first
chunk; constant features get scale 1 (not std + 1e-8); validation is checked once per epoch; rows are
shuffled by block and within block with a seeded generator; nothing is cached in RAM except, when it
is small, the validation set.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rocketstream.core import InputError

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
    split_rng,
)
from .moments import feature_moments
from .plots import plot_history
from .serialize import read_head, write_head
from .targets import as_label_array, as_targets, encode_classes

#: validation rows are kept in RAM when they take at most this many bytes, else streamed each epoch
VALIDATION_CACHE_BYTES = 64 * 2**20


class SoftmaxHead:
    """A trained linear head: standardisation (``mean_``, ``scale_``) then ``x @ weight_.T + bias_``.

    Classification heads (``classes_`` set) give class probabilities through a softmax; regression heads
    map outputs back with ``y_mean_ + y_scale_ * output``. Predictions stream the features block by block.
    """

    def __init__(
        self,
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
    ) -> None:
        self.weight_ = np.asarray(weight, dtype=np.float32)
        self.bias_ = np.asarray(bias, dtype=np.float32)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.classes_ = classes
        self.y_mean_, self.y_scale_, self.target_1d = y_mean, y_scale, bool(target_1d)
        self.history_ = history or {}
        self.best_epoch_ = best_epoch
        self.model_fingerprint_ = model_fingerprint

    @property
    def task(self) -> str:
        return "classification" if self.classes_ is not None else "regression"

    @property
    def n_features_in_(self) -> int:
        return int(self.weight_.shape[1])

    def decision_function(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Raw outputs (logits, or standardised regression outputs), shape (n_samples, n_outputs)."""
        source = FeatureSource(features)
        if source.n_features != self.n_features_in_:
            raise InputError(
                f"features have {source.n_features} columns but the head was trained on {self.n_features_in_}"
            )
        dev = torch.device(device or "cpu")
        model = _Standardised(self.mean_, self.scale_, self.weight_.shape[0], dev)
        with torch.no_grad():
            model.linear.weight.copy_(torch.from_numpy(self.weight_))
            model.linear.bias.copy_(torch.from_numpy(self.bias_))
            out = np.empty((source.n_samples, self.weight_.shape[0]), dtype=np.float32)
            for idx, x in read_blocks(source, range(source.n_blocks)):
                out[idx] = model(torch.from_numpy(x).to(dev)).cpu().numpy()
        return out

    def predict_proba(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Class probabilities (classification heads only)."""
        if self.classes_ is None:
            raise TypeError("predict_proba is for classification heads; this head does regression")
        logits = torch.from_numpy(self.decision_function(features, device))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, features: Any, device: str | torch.device | None = None) -> np.ndarray:
        """Predicted labels (classification) or targets (regression)."""
        out = self.decision_function(features, device)
        if self.classes_ is not None:
            return self.classes_[out.argmax(axis=1)]
        y = out.astype(np.float64) * self.y_scale_ + self.y_mean_
        return y[:, 0] if self.target_1d else y

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the head to an .npz file (plain arrays + JSON metadata, no pickle)."""
        arrays = {"weight": self.weight_, "bias": self.bias_, "mean": self.mean_, "scale": self.scale_}
        if self.classes_ is not None:
            arrays["classes"] = self.classes_
        else:
            arrays["y_mean"], arrays["y_scale"] = self.y_mean_, self.y_scale_
        meta = {"target_1d": self.target_1d, "history": self.history_, "best_epoch": self.best_epoch_,
                "model_fingerprint": self.model_fingerprint_}
        return write_head(path, "softmax", meta, arrays, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SoftmaxHead:
        """Read a head written by :meth:`save`."""
        meta, a = read_head(path, "softmax")
        return cls(
            a["weight"], a["bias"], a["mean"], a["scale"], classes=a.get("classes"), y_mean=a.get("y_mean"),
            y_scale=a.get("y_scale"), target_1d=meta["target_1d"], history=meta["history"],
            best_epoch=meta["best_epoch"], model_fingerprint=meta.get("model_fingerprint"),
        )


class _Standardised(nn.Module):
    """(x - mean) / scale, then a zero-initialised linear layer."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, n_out: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.linear = nn.Linear(len(mean), n_out)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.scale)


class _Validation:
    """Validation rows, cached on the device when small, else streamed block by block."""

    def __init__(self, source: FeatureSource, row_mask: np.ndarray | None, targets: torch.Tensor,
                 cache_bytes: int, device: torch.device) -> None:
        self.source, self.row_mask, self.targets, self.device = source, row_mask, targets, device
        n = source.n_samples if row_mask is None else int(row_mask.sum())
        self.cached: list[tuple[np.ndarray, torch.Tensor]] | None = None
        if n * source.n_features * 4 <= cache_bytes:
            self.cached = [(i, torch.from_numpy(x).to(device)) for i, x in self._stream()]

    def _stream(self):
        return read_blocks(self.source, range(self.source.n_blocks), self.row_mask)

    def evaluate(self, model: nn.Module, loss_fn: nn.Module, classify: bool) -> tuple[float, float | None]:
        """Mean loss and (classification) accuracy over the validation rows."""
        total, correct, count = 0.0, 0, 0
        batches = self.cached if self.cached is not None else self._stream()
        with torch.no_grad():
            for idx, x in batches:
                x = x if isinstance(x, torch.Tensor) else torch.from_numpy(x).to(self.device)
                y = self.targets[torch.from_numpy(idx)].to(self.device)
                out = model(x)
                total += float(loss_fn(out, y)) * len(idx)
                if classify:
                    correct += int((out.argmax(dim=1) == y).sum())
                count += len(idx)
        return total / count, (correct / count if classify else None)


def _split(n: int, fraction: float, seed: int) -> np.ndarray | None:
    """Boolean mask of validation rows (seeded), or None for no validation split."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * n))
    if fraction > 0 and n_val == 0:
        n_val = 1
    if n_val == 0:
        return None
    if n - n_val < 1:
        raise InputError(f"{n} rows are too few for a validation split of {fraction}; pass more rows")
    mask = np.zeros(n, dtype=bool)
    mask[split_rng(seed).choice(n, size=n_val, replace=False)] = True
    return mask


def train_softmax(
    features: Any,
    labels: Any,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-4,
    seed: int = 0,
    validation_fraction: float = 0.1,
    validation: tuple[Any, Any] | None = None,
    task: str = "classification",
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    lr_patience: int = 5,
    stop_patience: int = 10,
    validation_cache_bytes: int = VALIDATION_CACHE_BYTES,
    model: Any = None,
) -> SoftmaxHead:
    """Train a softmax (or linear regression) head from a (n_samples, n_features) features array.

    ``features`` is a Zarr, Dask or NumPy array, read one block (>= ``block_rows`` rows, whole storage
    chunks) at a time; ``labels`` has one entry per row. Validation: ``validation=(features, labels)``
    or a seeded ``validation_fraction`` of the rows (0 disables it and the training loss is monitored
    instead). With ``checkpoint_dir`` a checkpoint is written after every epoch, plus ``metrics.json``,
    ``training_curve.png`` and the final ``head.npz``; ``resume=True`` continues from the checkpoint
    there and gives the same result as an uninterrupted run with the same seed. Returns the head with
    the best validation loss; it records the model that made the features (from the features store
    or ``open_features`` attributes, or ``model``), so that predictions refuse another model.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    dev = torch.device(device or "cpu")
    source = FeatureSource(features, min_block_rows=block_rows)
    n, n_feat = source.shape
    made_by = model_fingerprint(source, model)
    classify = task == "classification"
    raw = as_label_array(labels, n)

    # validation rows
    if validation is not None:
        val_source = FeatureSource(validation[0], min_block_rows=block_rows, what="validation features")
        if val_source.n_features != n_feat:
            raise InputError(f"validation features have {val_source.n_features} columns, training {n_feat}")
        val_raw = as_label_array(validation[1], val_source.n_samples, what="validation labels")
        val_mask, train_mask = None, None
        feature_moments(val_source, what="validation features")  # NaN/Inf check, one streamed pass
    else:
        val_mask = _split(n, validation_fraction, seed)
        train_mask = None if val_mask is None else ~val_mask
        val_source, val_raw = (source, raw) if val_mask is not None else (None, None)

    # targets
    y_mean = y_scale = None
    target_1d = False
    if classify:
        classes, codes = encode_classes(raw)
        train_codes = codes if train_mask is None else codes[train_mask]
        if np.unique(train_codes).size < 2:
            raise InputError("the training rows (after the validation split) hold fewer than 2 classes")
        targets = torch.from_numpy(codes)
        n_out = classes.size
        if val_source is not None and validation is not None:
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            unknown = sorted({v for v in val_raw.tolist() if v not in lookup})
            if unknown:
                raise InputError(f"validation labels {unknown[:5]} are not among the training classes")
            val_targets = torch.as_tensor([lookup[v] for v in val_raw.tolist()], dtype=torch.int64)
        else:
            val_targets = targets
        loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        classes = None
        y = as_targets(raw)
        target_1d = y.ndim == 1
        y2 = y[:, None] if target_1d else y
        fit_rows = y2 if train_mask is None else y2[train_mask]
        y_mean, y_scale = fit_rows.mean(axis=0), fit_rows.std(axis=0)
        y_scale = np.where(y_scale > 0, y_scale, 1.0)
        targets = torch.from_numpy(((y2 - y_mean) / y_scale).astype(np.float32))
        n_out = y2.shape[1]
        if validation is not None:
            vy = as_targets(val_raw)
            vy = vy[:, None] if vy.ndim == 1 else vy
            val_targets = torch.from_numpy(((vy - y_mean) / y_scale).astype(np.float32))
        else:
            val_targets = targets
        loss_fn = nn.MSELoss()

    config = {
        "task": task, "seed": int(seed), "batch_size": int(batch_size), "lr": float(lr),
        "n_samples": n, "n_features": n_feat, "n_outputs": int(n_out), "block_rows": int(block_rows),
        "validation_fraction": float(validation_fraction) if validation is None else None,
        "n_validation": None if val_source is None else (int(val_mask.sum()) if val_mask is not None
                                                         else val_source.n_samples),
        "classes": None if classes is None else classes.tolist(),
        "lr_patience": int(lr_patience), "stop_patience": int(stop_patience),
        "fingerprint": _fingerprint(source, raw),
    }
    saved = None
    if checkpoint_dir is not None:
        saved = load_checkpoint(checkpoint_dir)
        if saved is not None and not resume and not overwrite:
            raise FileExistsError(
                f"{checkpoint_dir} already holds a checkpoint; pass resume=True to continue it or "
                "overwrite=True to start afresh"
            )
        if saved is not None and resume:
            check_compatible(saved["config"], config, checkpoint_dir)
        else:
            saved = None
    if saved is not None:  # the exact statistics the interrupted run used
        mean, scale = saved["mean"].numpy(), saved["scale"].numpy()
    else:
        moments = feature_moments(source, row_mask=train_mask)  # streamed; raises on NaN/Inf
        mean, scale = moments.mean, moments.scale()

    model = _Standardised(mean, scale, n_out, dev)
    optimizer = torch.optim.Adam(model.linear.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, min_lr=1e-8, patience=lr_patience
    )
    loader = ChunkShuffleLoader(source, batch_size=batch_size, seed=seed, row_mask=train_mask)
    val = (
        _Validation(val_source, val_mask, val_targets, validation_cache_bytes, dev)
        if val_source is not None else None
    )

    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": [], "val_accuracy": [], "lr": []}
    start_epoch, best_loss, bad_epochs, stopped, best_epoch = 0, math.inf, 0, False, None
    best_state = cpu_state(model.linear.state_dict())
    if saved is not None:
        model.linear.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        best_state = saved["best_model"]
        start_epoch, best_loss, bad_epochs = saved["epoch"], saved["best_loss"], saved["bad_epochs"]
        stopped, best_epoch, history = saved["stopped"], saved["best_epoch"], saved["history"]

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=max(0, epochs - start_epoch) * len(loader), desc="train head", unit="batch")
        except ImportError:
            bar = None

    for epoch in range(start_epoch, epochs):
        if stopped:
            break
        model.train()
        total, count = torch.zeros((), dtype=torch.float64, device=dev), 0
        for idx, x in loader.epoch(epoch):
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
        train_loss = float(total) / max(count, 1)
        model.eval()
        if val is not None:
            val_loss, val_acc = val.evaluate(model, loss_fn, classify)
        else:
            val_loss, val_acc = None, None
        monitored = val_loss if val_loss is not None else train_loss
        scheduler.step(monitored)
        if monitored < best_loss:
            best_loss, bad_epochs, best_epoch = monitored, 0, epoch + 1
            best_state = cpu_state(model.linear.state_dict())
        else:
            bad_epochs += 1
        stopped = bad_epochs >= stop_patience
        for key, value in (("epoch", epoch + 1), ("train_loss", train_loss), ("val_loss", val_loss),
                           ("val_accuracy", val_acc), ("lr", optimizer.param_groups[0]["lr"])):
            history[key].append(value)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, {
                "config": config, "epoch": epoch + 1, "model": cpu_state(model.linear.state_dict()),
                "best_model": best_state, "optimizer": cpu_state(optimizer.state_dict()),
                "scheduler": scheduler.state_dict(),
                "best_loss": best_loss, "bad_epochs": bad_epochs, "stopped": stopped,
                "best_epoch": best_epoch, "history": history, "mean": torch.from_numpy(mean),
                "scale": torch.from_numpy(scale),
            })
            write_metrics(checkpoint_dir, _metrics(config, history, best_epoch, best_loss, stopped))
    if bar is not None:
        bar.close()

    head = SoftmaxHead(
        best_state["weight"].numpy(), best_state["bias"].numpy(), mean, scale, classes=classes,
        y_mean=y_mean, y_scale=y_scale, target_1d=target_1d, history=history, best_epoch=best_epoch,
        model_fingerprint=made_by,
    )
    if checkpoint_dir is not None:
        plot_history(history, Path(checkpoint_dir) / CURVE_NAME)
        head.save(Path(checkpoint_dir) / HEAD_NAME, overwrite=True)
    return head


def _fingerprint(source: FeatureSource, labels: np.ndarray) -> str:
    """A cheap identity check of the training data: hash of the labels and the first and last rows."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(labels).tobytes())
    h.update(source.read(0, min(4, source.n_samples)).tobytes())
    h.update(source.read(max(0, source.n_samples - 4), source.n_samples).tobytes())
    return h.hexdigest()[:16]


def _metrics(config: dict, history: dict, best_epoch: int | None, best_loss: float, stopped: bool) -> dict:
    return {
        "config": config,
        "epochs_run": len(history["epoch"]),
        "best_epoch": best_epoch,
        "best_monitored_loss": None if math.isinf(best_loss) else best_loss,
        "stopped_early": stopped,
        "history": history,
    }
