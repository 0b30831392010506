"""The pieces :class:`~rocketstream.heads.SoftmaxHead` is made of, each one step of its training.

- :class:`Standardised`: the network, ``(x - mean) / scale`` then a zero-initialised ``nn.Linear``;
- :func:`split_rows` -> :class:`Rows`: the training rows and the validation rows (a seeded split of
  the training store, or the caller's own validation set); :func:`auto_validation_rows` and
  :func:`auto_batch_size` are the defaults' rules (see :class:`~rocketstream.heads.SoftmaxHead`);
- :func:`encode_targets` -> :class:`Targets`: class codes (cross-entropy) or standardised regression
  targets (mean squared error) for both;
- :class:`Validation`: the validation rows, cached on the device when small, else streamed;
- :class:`Progress`: where the epoch loop stands (best model and loss, patience, history): with the
  torch states, what a checkpoint records; :func:`run_fingerprint` and :func:`metrics` go with it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rocketstream.core import InputError

from .loader import FeatureSource, read_blocks, split_rng
from .moments import feature_moments
from .targets import as_label_array, as_targets, encode_classes

HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr")

#: the default validation split: this share of the rows, at most MAX_VALIDATION_ROWS (the authors' 2,048) ...
AUTO_VALIDATION_FRACTION = 0.1
MAX_VALIDATION_ROWS = 2048
#: ... and only when it holds at least this many rows (10,000+ training rows); else no split
MIN_VALIDATION_ROWS = 1000
#: the default minibatch (classification): a power of two giving at least MIN_BATCHES_PER_EPOCH per epoch,
#: within these bounds
MIN_BATCH_SIZE, MAX_BATCH_SIZE, MIN_BATCHES_PER_EPOCH = 32, 256, 64


def auto_validation_rows(n: int) -> int:
    """Rows the default (``validation_fraction=None``) holds out of ``n``: 10% up to 2,048, or 0 when
    that would be under :data:`MIN_VALIDATION_ROWS` (a smaller split only adds noise to early stopping
    and the learning-rate schedule, and takes rows from training).

    Parameters
    ----------
    n : int
        Training rows before the split.

    Returns
    -------
    int
        ``min(2048, n // 10)`` when that is at least 1,000 (``n >= 10,000``), else 0.
    """
    rows = min(MAX_VALIDATION_ROWS, int(n) // round(1 / AUTO_VALIDATION_FRACTION))
    return rows if rows >= MIN_VALIDATION_ROWS else 0


def auto_batch_size(n_train: int, task: str = "classification") -> int:
    """The default (``batch_size=None``) minibatch for ``n_train`` training rows.

    Classification: the largest power of two giving at least 64 minibatches per epoch, clipped to
    [32, 256]: 256 (the authors' size) from 16,384 rows up, 32 below 4,096. With label smoothing,
    the more and noisier steps close most of the gap to ridge on smaller sets (benchmarks/RESULTS.md).
    Regression: 256 (nothing bounds the outputs there, and more steps overfit).

    Parameters
    ----------
    n_train : int
        Training rows (after the validation split).
    task : {"classification", "regression"}, default "classification"

    Returns
    -------
    int
    """
    if task != "classification":
        return MAX_BATCH_SIZE
    per_epoch = max(1, int(n_train) // MIN_BATCHES_PER_EPOCH)
    return min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, 1 << (per_epoch.bit_length() - 1)))


class Standardised(nn.Module):
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


# ----------------------------------------------------------------------------------------- rows
@dataclass
class Rows:
    """The training rows and the validation rows.

    With a split, ``val_source`` is the training ``source`` itself and ``val_mask`` / ``train_mask``
    select the rows; with the caller's validation set (``explicit``) both masks are None.
    """

    source: FeatureSource
    labels: np.ndarray
    train_mask: np.ndarray | None = None
    val_source: FeatureSource | None = None
    val_labels: np.ndarray | None = None
    val_mask: np.ndarray | None = None
    explicit: bool = False

    @property
    def n_validation(self) -> int | None:
        if self.val_source is None:
            return None
        return int(self.val_mask.sum()) if self.val_mask is not None else self.val_source.n_samples


def split_rows(source: FeatureSource, labels: np.ndarray, validation: tuple[Any, Any] | None,
               fraction: float | str | None, seed: int, block_rows: int) -> Rows:
    """The caller's ``validation=(features, labels)`` (checked: columns, label count, NaN/Inf), else a
    seeded ``fraction`` of the rows (none when 0; None or "auto": :func:`auto_validation_rows`)."""
    if validation is not None:
        val_source = FeatureSource(validation[0], min_block_rows=block_rows, what="validation features")
        if val_source.n_features != source.n_features:
            raise InputError(f"validation features have {val_source.n_features} columns, "
                             f"training {source.n_features}")
        val_labels = as_label_array(validation[1], val_source.n_samples, what="validation labels")
        feature_moments(val_source, what="validation features")  # NaN/Inf check, one streamed pass
        return Rows(source, labels, None, val_source, val_labels, None, explicit=True)
    if is_auto(fraction):
        val_mask = _mask(source.n_samples, auto_validation_rows(source.n_samples), seed)
    else:
        val_mask = validation_mask(source.n_samples, fraction, seed)
    if val_mask is None:
        return Rows(source, labels)
    return Rows(source, labels, ~val_mask, source, labels, val_mask)


def validation_mask(n: int, fraction: float, seed: int) -> np.ndarray | None:
    """Boolean mask of validation rows (seeded), or None for no validation split."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * n))
    if fraction > 0 and n_val == 0:
        n_val = 1
    if n_val and n - n_val < 1:
        raise InputError(f"{n} rows are too few for a validation split of {fraction}; pass more rows")
    return _mask(n, n_val, seed)


def is_auto(fraction: Any) -> bool:
    """Whether a ``validation_fraction`` asks for the default rule: None, or "auto" (as configs record it)."""
    return fraction is None or (isinstance(fraction, str) and fraction == "auto")


def _mask(n: int, n_val: int, seed: int) -> np.ndarray | None:
    """``n_val`` seeded validation rows of ``n`` as a boolean mask, or None when ``n_val`` is 0."""
    if n_val == 0:
        return None
    mask = np.zeros(n, dtype=bool)
    mask[split_rng(seed).choice(n, size=n_val, replace=False)] = True
    return mask


# -------------------------------------------------------------------------------------- targets
@dataclass
class Targets:
    """What the network is trained to output, for every row of the training and validation sources."""

    train: torch.Tensor
    val: torch.Tensor
    n_out: int
    loss_fn: nn.Module
    classes: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_scale: np.ndarray | None = None
    target_1d: bool = False


def encode_targets(rows: Rows, task: str) -> Targets:
    """Class codes (classification) or targets standardised by the training rows (regression)."""
    return _class_targets(rows) if task == "classification" else _regression_targets(rows)


def _class_targets(rows: Rows) -> Targets:
    classes, codes = encode_classes(rows.labels)
    train_codes = codes if rows.train_mask is None else codes[rows.train_mask]
    if np.unique(train_codes).size < 2:
        raise InputError("the training rows (after the validation split) hold fewer than 2 classes")
    targets = torch.from_numpy(codes)
    val_targets = targets
    if rows.explicit:
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        unknown = sorted({v for v in rows.val_labels.tolist() if v not in lookup})
        if unknown:
            raise InputError(f"validation labels {unknown[:5]} are not among the training classes")
        val_targets = torch.as_tensor([lookup[v] for v in rows.val_labels.tolist()], dtype=torch.int64)
    return Targets(targets, val_targets, classes.size, nn.CrossEntropyLoss(), classes=classes)


def _regression_targets(rows: Rows) -> Targets:
    y = as_targets(rows.labels)
    target_1d = y.ndim == 1
    y2 = y[:, None] if target_1d else y
    fit_rows = y2 if rows.train_mask is None else y2[rows.train_mask]
    y_mean, y_scale = fit_rows.mean(axis=0), fit_rows.std(axis=0)
    y_scale = np.where(y_scale > 0, y_scale, 1.0)
    targets = torch.from_numpy(((y2 - y_mean) / y_scale).astype(np.float32))
    val_targets = targets
    if rows.explicit:
        vy = as_targets(rows.val_labels)
        vy = vy[:, None] if vy.ndim == 1 else vy
        val_targets = torch.from_numpy(((vy - y_mean) / y_scale).astype(np.float32))
    return Targets(targets, val_targets, y2.shape[1], nn.MSELoss(), y_mean=y_mean, y_scale=y_scale,
                   target_1d=target_1d)


# ----------------------------------------------------------------------------------- validation
class Validation:
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


# ------------------------------------------------------------------------------------- progress
def _empty_history() -> dict[str, list]:
    return {key: [] for key in HISTORY_KEYS}


@dataclass
class Progress:
    """Where the epoch loop stands: the best model so far (CPU state dict of the linear layer) and
    its monitored loss, the epochs done, patience used, and the per-epoch history."""

    best_model: dict[str, torch.Tensor]
    epoch: int = 0
    best_loss: float = math.inf
    bad_epochs: int = 0
    stopped: bool = False
    best_epoch: int | None = None
    history: dict[str, list] = field(default_factory=_empty_history)

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> Progress:
        return cls(saved["best_model"], saved["epoch"], saved["best_loss"], saved["bad_epochs"],
                   saved["stopped"], saved["best_epoch"], saved["history"])

    def record(self, epoch: int, monitored: float, model_state: Callable[[], dict], stop_patience: int | None,
               **values: Any) -> None:
        """Close epoch ``epoch`` (0-based): keep the model if ``monitored`` improved, count patience
        (``stop_patience`` None: never stop), and append ``values`` (train_loss, val_loss, val_accuracy,
        lr) to the history."""
        if monitored < self.best_loss:
            self.best_loss, self.bad_epochs, self.best_epoch = monitored, 0, epoch + 1
            self.best_model = model_state()
        else:
            self.bad_epochs += 1
        self.stopped = stop_patience is not None and self.bad_epochs >= stop_patience
        self.epoch = epoch + 1
        for key in HISTORY_KEYS:
            self.history[key].append(epoch + 1 if key == "epoch" else values[key])


def run_fingerprint(source: FeatureSource, labels: np.ndarray) -> str:
    """A cheap identity check of the training data: hash of the labels and the first and last rows."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(labels).tobytes())
    h.update(source.read(0, min(4, source.n_samples)).tobytes())
    h.update(source.read(max(0, source.n_samples - 4), source.n_samples).tobytes())
    return h.hexdigest()[:16]


def metrics(config: dict, progress: Progress) -> dict:
    """The ``metrics.json`` written beside the checkpoint."""
    return {
        "config": config,
        "epochs_run": len(progress.history["epoch"]),
        "best_epoch": progress.best_epoch,
        "best_monitored_loss": None if math.isinf(progress.best_loss) else progress.best_loss,
        "stopped_early": progress.stopped,
        "history": progress.history,
    }
