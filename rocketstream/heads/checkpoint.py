"""Training checkpoints: plain state dicts written with ``torch.save``, read with ``weights_only=True``.

Each checkpoint carries ``sha256``: a digest of its whole content (every key, number, string and tensor
dtype/shape/bytes, walked in a canonical order), checked on load, so an edited or damaged checkpoint is
refused instead of silently resuming from altered state. The file is replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rocketstream.core.tensors import is_tensor
from rocketstream.errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
CURVE_NAME = "training_curve.png"
HEAD_NAME = "head.npz"
FORMAT = "rocketstream-softmax-checkpoint"
VERSION = 2  # 2: sha256 of the content


def cpu_state(state: dict[str, Any]) -> dict[str, Any]:
    """A detached CPU copy of a (possibly nested) state dict."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if is_tensor(v):
            out[k] = v.detach().to("cpu", copy=True)
        elif isinstance(v, dict):
            out[k] = cpu_state(v)
        else:
            out[k] = v
    return out


def state_digest(obj: Any) -> str:
    """sha256 of a nested state (dicts, lists, tuples, tensors, numbers, strings, None), canonical."""
    h = hashlib.sha256()

    def walk(o: Any) -> None:
        if is_tensor(o):  # then torch is loaded already
            import torch

            t = o.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            h.update(b"D%d" % len(o))
            for k in sorted(o, key=lambda k: (type(k).__name__, repr(k))):
                h.update(f"K{type(k).__name__}:{k!r}".encode())
                walk(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(b"L%d" % len(o))
            for v in o:
                walk(v)
        elif o is None or isinstance(o, (bool, int, float, str)):
            h.update(f"S{type(o).__name__}:{o!r};".encode())
        else:
            raise TypeError(f"checkpoint state holds a {type(o).__name__}; only tensors and plain values")

    walk(obj)
    return h.hexdigest()


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts only) to the checkpoint file."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    tmp = directory / (CHECKPOINT_NAME + ".tmp")
    body = {"format": FORMAT, "version": VERSION, **state}
    torch.save({**body, "sha256": state_digest(body)}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The checkpoint in ``directory`` (CPU tensors), or None if there is none.

    Raises :class:`CheckpointError` if the file is unreadable (truncated), holds anything but tensors
    and plain containers (``weights_only=True``), or fails its sha256 check (edited or corrupted).
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    import torch  # only when there is a checkpoint to read

    fix = "delete it (or pass overwrite=True / --overwrite) to train afresh"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file the same way
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path} ({msg}); {fix}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a rocketstream softmax checkpoint; {fix}")
    version = state.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {version!r}; upgrade rocketstream")
    body = {k: v for k, v in state.items() if k != "sha256"}
    try:
        ok = state.get("sha256") == state_digest(body)
    except TypeError:
        ok = False
    if not ok:
        raise CheckpointError(f"checkpoint {path} fails its sha256 check (edited, corrupted, or written by "
                              f"an older rocketstream); {fix}")
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
