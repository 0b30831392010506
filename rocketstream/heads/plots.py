"""Training-curve plot (PNG via matplotlib's Agg canvas; skipped when matplotlib is missing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def plot_history(history: dict[str, list[Any]], path: str | os.PathLike) -> Path | None:
    """Plot loss (train / validation), validation accuracy and learning rate per epoch to ``path``.

    Returns the path written, or None when matplotlib is not installed. Uses the Agg canvas directly,
    so no pyplot global state or display is touched.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    epochs = history.get("epoch", [])
    fig = Figure(figsize=(10, 3.2))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, history.get("train_loss", []), label="train")
    if any(v is not None for v in history.get("val_loss", [])):
        ax_loss.plot(epochs, history["val_loss"], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    acc = history.get("val_accuracy", [])
    if any(v is not None for v in acc):
        ax_acc.plot(epochs, acc)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_lr.plot(epochs, history.get("lr", []))
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.95, wspace=0.45)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
