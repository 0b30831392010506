"""Head files: one .npz of plain arrays plus a JSON metadata string (never pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rocketstream.core import ModelFileError

FORMAT = "rocketstream-head"
VERSION = 1


def write_head(path: str | os.PathLike, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray],
               overwrite: bool = False) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` (.npz); refuses to replace a file unless ``overwrite``."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    header = json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, **meta})
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; heads store plain arrays only")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __meta__=np.asarray(header), **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return path


def read_head(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a head file written by :func:`write_head` (``allow_pickle=False``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read head file {path}: {exc}") from exc
    if "__meta__" not in arrays:
        raise ModelFileError(f"{path} is not a rocketstream head file (no metadata)")
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise ModelFileError(f"{path} holds a {meta.get('kind')!r} head, expected {kind!r}")
    if meta.get("version", 0) > VERSION:
        raise ModelFileError(f"{path} has head format version {meta['version']}; upgrade rocketstream")
    return meta, arrays
