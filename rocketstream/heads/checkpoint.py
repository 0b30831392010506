"""Training checkpoints: plain state dicts written with ``torch.save``, read with ``weights_only=True``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
CURVE_NAME = "training_curve.png"
HEAD_NAME = "head.npz"
FORMAT = "rocketstream-softmax-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used to resume this training run."""


def cpu_state(state: dict[str, Any]) -> dict[str, Any]:
    """A detached CPU copy of a (possibly nested) state dict."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().to("cpu", copy=True)
        elif isinstance(v, dict):
            out[k] = cpu_state(v)
        else:
            out[k] = v
    return out


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts only) to the checkpoint file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    tmp = directory / (CHECKPOINT_NAME + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The checkpoint in ``directory`` (CPU tensors), or None if there is none."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file the same way
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a rocketstream softmax checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state['version']}; upgrade rocketstream")
    return state


def check_compatible(saved: dict[str, Any], current: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse to resume when the run's configuration differs from the checkpoint's."""
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}" for k, v in current.items() if saved.get(k) != v
    ]
    if diffs:
        raise CheckpointError(
            f"cannot resume from {Path(path) / CHECKPOINT_NAME}: the run differs ({'; '.join(diffs)}); "
            "use the same data and settings, or start afresh with resume=False, overwrite=True"
        )


def write_metrics(directory: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Write the metrics JSON beside the checkpoint."""
    path = Path(directory) / METRICS_NAME
    tmp = path.with_name(METRICS_NAME + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, path)
    return path
