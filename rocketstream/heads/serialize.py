"""Head files: one .npz of plain arrays plus a JSON metadata string (never pickle), sealed by a sha256.

The checksum covers the metadata (without its ``sha256`` key) and every array's name, dtype, shape and
bytes, so any edit of the file (a weight, a class label, the metadata) is refused on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rocketstream.core import ModelFileError
from rocketstream.storage.locations import resolve
from rocketstream.storage.outputs import write_file

from .checkpoint import HEAD_NAME

FORMAT = "rocketstream-head"
VERSION = 2  # 2: sha256 over metadata and arrays


def head_checksum(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the metadata (canonical JSON, ``sha256`` left out) and the arrays, in name order (their
    bytes are streamed, not copied: ridge statistics files hold F x F matrices)."""
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def write_head(path: str | os.PathLike, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray],
               overwrite: bool = False) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` (.npz), atomically; refuses to replace a file unless
    ``overwrite``, and never replaces anything but a head file (a device, a directory, a model...)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for name, arr in arrays.items():
        if arr.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; heads store plain arrays only")
    # the JSON round trip first, so that the checksum covers exactly what a reader will parse
    header = json.loads(json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, **meta}))
    header["sha256"] = head_checksum(header, arrays)
    return write_file(resolve(path), lambda fh: np.savez(fh, __meta__=np.asarray(json.dumps(header)),
                                                         **arrays), "head", overwrite)


def head_file(path: str | os.PathLike) -> Path:
    """The head file ``path`` names: the ``.npz`` file itself, the same name without its ``.npz`` suffix,
    or a softmax checkpoint directory holding ``head.npz``; ``~`` and ``file://`` are accepted.

    Raises FileNotFoundError (naming the fix) when there is no such file.
    """
    p = resolve(path).path
    if p.is_dir():
        if not (p / HEAD_NAME).is_file():
            raise FileNotFoundError(f"{p} is a directory without {HEAD_NAME}; give the head .npz file "
                                    "written by `rocketstream train` (or a checkpoint directory holding it)")
        p = p / HEAD_NAME
    elif not p.exists() and p.suffix != ".npz" and p.with_name(p.name + ".npz").exists():
        p = p.with_name(p.name + ".npz")
    if not p.exists():
        raise FileNotFoundError(f"head file not found: {p}; train one with `rocketstream train`")
    return p


def read_head_kind(path: Path) -> str | None:
    """The ``kind`` recorded in a head file's metadata (None when it records none).

    Raises ModelFileError when the file is not an ``.npz`` archive with readable metadata.
    """
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with f:
            meta = json.loads(str(f["__meta__"])) if "__meta__" in f.files else {}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFileError(f"cannot read head file {path} ({type(exc).__name__}: {exc}); expected a .npz "
                             "head from `rocketstream train`") from exc
    return meta.get("kind") if isinstance(meta, dict) else None


def read_head(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a head file written by :func:`write_head` (``allow_pickle=False``), verifying its sha256."""
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"head file not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - zip, npy header or decompression damage
        raise ModelFileError(f"cannot read head file {path} ({type(exc).__name__}: {exc}); it is damaged "
                             "or not a head: retrain it with `rocketstream train`") from exc
    if "__meta__" not in arrays:
        raise ModelFileError(f"{path} is not a rocketstream head file (no metadata)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ModelFileError(f"{path} has unreadable head metadata ({exc}); retrain it") from exc
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise ModelFileError(f"{path} holds a {meta.get('kind')!r} head, expected {kind!r}")
    version = meta.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise ModelFileError(f"{path} has head format version {version!r}; upgrade rocketstream")
    if "sha256" not in meta:
        raise ModelFileError(f"{path} has no checksum (written by an older rocketstream, or edited); "
                             "retrain it with `rocketstream train`")
    if meta["sha256"] != head_checksum(meta, arrays):
        raise ModelFileError(f"head file {path} fails its sha256 check: it was edited or corrupted; "
                             "retrain it with `rocketstream train`")
    return meta, arrays
