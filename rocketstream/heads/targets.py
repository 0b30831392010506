"""Label and target validation shared by the heads."""

from __future__ import annotations

from typing import Any

import numpy as np

from rocketstream.core import InputError


def as_label_array(labels: Any, n_samples: int, what: str = "labels") -> np.ndarray:
    """Labels or targets as a NumPy array whose first axis has ``n_samples`` entries.

    Accepts NumPy arrays, lists, Zarr arrays, Dask arrays and xarray DataArrays (e.g. a coordinate).
    """
    if labels is None:
        raise InputError(f"{what} are missing; pass one label per feature row")
    if hasattr(labels, "compute") and not isinstance(labels, np.ndarray):
        labels = labels.compute()
    if hasattr(labels, "values") and not isinstance(labels, np.ndarray) and not callable(labels.values):
        labels = labels.values  # xarray DataArray / pandas Series
    if not isinstance(labels, np.ndarray) and hasattr(labels, "shape") and hasattr(labels, "__getitem__"):
        labels = labels[...]  # zarr.Array
    arr = np.asarray(labels)
    if arr.ndim == 0:
        raise InputError(f"{what} must be a 1-D array with one entry per feature row, got a scalar")
    if arr.shape[0] != n_samples:
        raise InputError(
            f"{what} has {arr.shape[0]} entries but the features have {n_samples} rows; "
            "pass exactly one label per feature row"
        )
    if arr.dtype == object:
        arr = np.asarray(arr.tolist())
    return arr


def encode_classes(labels: np.ndarray, what: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique classes and the integer code of each label; at least two classes required."""
    if labels.ndim != 1:
        raise InputError(f"{what} for classification must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise InputError(f"{what} contain NaN/Inf; drop those rows or fix the labels")
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        found = repr(classes[0].item()) if classes.size else "none"
        raise InputError(
            f"classification needs at least 2 classes in {what}, found {classes.size} ({found}); "
            "check the labels or use a regression head"
        )
    return classes, codes.reshape(-1).astype(np.int64)


def as_targets(targets: np.ndarray, what: str = "targets") -> np.ndarray:
    """Regression targets as float64 (1-D or 2-D), finite."""
    if targets.ndim not in (1, 2):
        raise InputError(f"{what} must be 1-D or 2-D (n_samples[, n_targets]), got shape {targets.shape}")
    if targets.dtype.kind not in "fiub":
        raise InputError(f"regression {what} must be numeric, got dtype {targets.dtype}")
    y = targets.astype(np.float64)
    if not np.isfinite(y).all():
        raise InputError(f"{what} contain NaN/Inf; drop those rows or fix the targets")
    return y


def infer_task(labels: Any, recorded: str | None = None) -> tuple[str, str]:
    """The task a head should learn, and one line saying why.

    ``recorded`` (what ``rocketstream ingest`` or the features store wrote down) wins; otherwise
    real-valued targets (a float array with any value that is not a whole number, or 2-D float
    targets) mean regression, everything else (strings, integers, whole floats) classification.

    Parameters
    ----------
    labels : array-like
        The labels or targets.
    recorded : {"classification", "regression"}, optional
        The task recorded beside the data.

    Returns
    -------
    tuple of str
        ``(task, reason)``.
    """
    if recorded in ("classification", "regression"):
        return recorded, f"{recorded}: recorded with the data"
    arr = np.asarray(labels)
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        if arr.ndim > 1 or finite.size < arr.size or np.any(finite != np.round(finite)):
            return "regression", "regression: the targets are real numbers"
        return "classification", "classification: the float labels are whole numbers"
    kind = "text" if arr.dtype.kind in "USTO" else "integers"
    return "classification", f"classification: the labels are {kind}"
