"""Open Zarr arrays and groups from local paths or fsspec URLs, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zarr

from ..core.validation import InputError


def is_url(path: str | os.PathLike) -> bool:
    """True for fsspec URLs such as ``s3://bucket/x.zarr`` or ``memory://x``."""
    return "://" in str(path)


def _store_arg(path: str | os.PathLike) -> str:
    return str(path) if is_url(path) else os.fspath(Path(path).expanduser())


def store_exists(path: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> bool:
    """True if a Zarr group or array already lives at ``path``."""
    try:
        zarr.open(_store_arg(path), mode="r", storage_options=storage_options if is_url(path) else None)
    except Exception:  # nothing there, or something that is not a Zarr node
        return _local_nonempty(path)
    return True


def _local_nonempty(path: str | os.PathLike) -> bool:
    if is_url(path):
        return False
    p = Path(path).expanduser()
    return p.is_file() or (p.is_dir() and any(p.iterdir()))


def describe_group(group: zarr.Group) -> str:
    """A short ``name (shape dtype)`` listing of the arrays in a group, for error messages."""
    items = [f"{k} {tuple(a.shape)} {a.dtype}" for k, a in sorted(group.arrays())]
    return ", ".join(items) if items else "no arrays"


def open_input_array(
    source: str | os.PathLike | zarr.Array | zarr.Group,
    variable: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> zarr.Array:
    """Open the input array: a Zarr array, or ``variable`` inside a Zarr group (path, URL or object).

    A group with a single 3-D array needs no ``variable``.
    """
    node: Any = source
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        if not is_url(source) and not Path(source).expanduser().exists():
            raise FileNotFoundError(f"input not found: {where}; give a Zarr store path or an fsspec URL")
        try:
            node = zarr.open(_store_arg(source), mode="r",
                             storage_options=storage_options if is_url(source) else None)
        except (FileNotFoundError, KeyError):
            raise FileNotFoundError(f"no Zarr array or group at {where}") from None
        except Exception as exc:
            raise InputError(f"cannot open {where} as Zarr ({type(exc).__name__}: {exc}); "
                             "the input must be a Zarr array or group") from None
    else:
        where = repr(source)
    if isinstance(node, zarr.Array):
        if variable is not None:
            raise InputError(f"{where} is a single Zarr array, not a group: drop --variable/variable=")
        return node
    if not isinstance(node, zarr.Group):
        raise TypeError(f"expected a Zarr array or group, got {type(node).__name__}")
    if variable is None:
        candidates = [k for k, a in node.arrays() if a.ndim == 3]
        if len(candidates) != 1:
            raise InputError(f"{where} is a Zarr group holding {describe_group(node)}; "
                             "name the (sample, channel, time) array with --variable/variable=")
        variable = candidates[0]
    try:
        arr = node[variable]
    except KeyError:
        raise InputError(f"variable {variable!r} not found in {where}; "
                         f"it holds {describe_group(node)}") from None
    if not isinstance(arr, zarr.Array):
        raise InputError(f"{variable!r} in {where} is a group, not an array; name an array inside it")
    return arr
