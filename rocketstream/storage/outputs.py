"""What ``overwrite`` may replace: only an output rocketstream itself made, of the same kind.

A features or predictions store carries its format tag in its attributes (written first, so even a
store whose creation was interrupted is recognised); a model file is JSON with the model format tag;
a head file is an .npz whose first member is the head metadata. Anything else at an output path (a
device, a plain file, a directory of other files, somebody's Zarr store, the input itself) is refused
with a message that names it, and nothing is touched. An empty file or directory holds nothing to
lose and may be replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..errors import UnsafeOutputError
from .locations import Location
from .tempfiles import remove_stale_siblings, temp_sibling

ATTR = "rocketstream"
#: store kinds and the format tag their attributes carry
#: a dataset written by ``rocketstream ingest`` (an input store) carries the attribute ``INGEST_ATTR``
INGEST_ATTR = "rocketstream_ingest"
STORE_FORMATS = {"features": "rocketstream.features", "predictions": "rocketstream.predictions",
                 "dataset": "rocketstream.dataset"}
DATASET_FORMAT = STORE_FORMATS["dataset"]
#: file kinds and a byte string their first bytes contain
FILE_MARKERS = {"model": b'"rocketstream.minirocket-parameters"', "head": b"__meta__.npy"}
_HEAD_BYTES = 4096


def _store_format(loc: Location, storage_options: dict[str, Any] | None) -> str | None:
    """The format tag of the store at ``loc`` (None if it is not a rocketstream store)."""
    if not loc.url:
        try:
            meta = json.loads((loc.path / "zarr.json").read_text())
        except (OSError, ValueError):
            return None
        attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    else:
        import zarr  # only for a URL: local stores are read as JSON above

        try:
            attrs = dict(zarr.open_group(loc.target, mode="r", storage_options=storage_options,
                                            use_consolidated=False).attrs)
        except Exception:  # nothing there, or not a group
            return None
    if isinstance(attrs.get(INGEST_ATTR), dict):
        return DATASET_FORMAT
    tag = attrs.get(ATTR)
    return tag.get("format") if isinstance(tag, dict) else None


def _url_exists(loc: Location, storage_options: dict[str, Any] | None) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(loc.target, **(storage_options or {}))
    return bool(fs.exists(path))


def existing_output(loc: Location, kind: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether something is at ``loc`` that ``overwrite`` may replace.

    Returns False if nothing (or an empty file or directory) is there, True if a rocketstream ``kind``
    output is there; raises :class:`UnsafeOutputError` for anything else.

    Parameters
    ----------
    loc : Location
        The output.
    kind : str
        ``"features"``, ``"predictions"``, ``"dataset"`` (stores) or ``"model"``, ``"head"`` (files).
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    bool

    Raises
    ------
    UnsafeOutputError
        Something is there that is not a rocketstream ``kind`` output (a symbolic link included).
    FileNotFoundError
        The parent directory of a local output does not exist.
    NotADirectoryError
        The parent of a local output is not a directory.
    """
    if loc.url:
        if not _url_exists(loc, storage_options):
            return False
        if kind in STORE_FORMATS and _store_format(loc, storage_options) in STORE_FORMATS.values():
            return _same_kind(loc, kind, _store_format(loc, storage_options))
        raise UnsafeOutputError(f"{loc.display} exists and is not a rocketstream {kind} "
                                f"{'store' if kind in STORE_FORMATS else 'file'}; refusing to replace "
                                "it: choose another output path, or delete it yourself")
    _check_parent(loc)
    try:
        info = os.lstat(loc.target)
    except FileNotFoundError:
        return False
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        raise UnsafeOutputError(f"{loc.display} is a symbolic link; refusing to replace it: give the "
                                "path it points to, or another output path")
    if kind in STORE_FORMATS:
        if stat.S_ISDIR(mode):
            if not any(os.scandir(loc.target)):
                return False  # an empty directory: nothing to lose, written into as it is
            found = _store_format(loc, None)
            if found in STORE_FORMATS.values():
                return _same_kind(loc, kind, found)
            what = "a Zarr store not made by rocketstream" if (loc.path / "zarr.json").exists() or (
                loc.path / ".zgroup").exists() or (loc.path / ".zarray").exists() else \
                "a directory that is not a rocketstream store"
            raise UnsafeOutputError(f"output {loc.display} is {what}; refusing to delete it: choose "
                                    "another output path")
        if stat.S_ISREG(mode):
            raise UnsafeOutputError(f"output {loc.display} is a file, not a rocketstream {kind} store; "
                                    "refusing to replace it: choose another output path")
        raise UnsafeOutputError(f"output {loc.display} is a device or special file; refusing to replace "
                                "it: choose another output path")
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "a device or special file"
        raise UnsafeOutputError(f"{loc.display} is {what}, not a {kind} file; refusing to replace it: "
                                f"give a file path for the {kind}")
    if info.st_size == 0:
        return False  # an empty file: nothing to lose
    with open(loc.target, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if FILE_MARKERS[kind] not in head:
        raise UnsafeOutputError(f"{loc.display} exists and is not a rocketstream {kind} file; refusing to "
                                "replace it: choose another path, or delete it yourself")
    return True


def _check_parent(loc: Location) -> None:
    """An output goes into an existing directory (never one created by accident from a typo)."""
    parent = os.path.dirname(loc.target)
    if os.path.isdir(parent):
        return
    if os.path.lexists(parent):
        raise NotADirectoryError(f"{parent} is not a directory, so {loc.display} cannot be written there; "
                                 "choose an output path inside a directory")
    raise FileNotFoundError(f"directory {parent} does not exist; create it first (for {loc.display})")


def _same_kind(loc: Location, kind: str, found: str | None) -> bool:
    if found != STORE_FORMATS[kind]:
        other = next(k for k, v in STORE_FORMATS.items() if v == found)
        raise UnsafeOutputError(f"output {loc.display} is a rocketstream {other} store, not a {kind} "
                                "store; refusing to replace it: choose another output path")
    return True


def remove_output(loc: Location, kind: str, storage_options: dict[str, Any] | None = None) -> None:
    """Delete the ``kind`` output at ``loc`` after :func:`existing_output` allowed it (re-checked).

    Parameters
    ----------
    loc : Location
        The output.
    kind : str
        As in :func:`existing_output`.
    storage_options : dict, optional
        fsspec options for a URL.

    Raises
    ------
    UnsafeOutputError
        What is there is not a rocketstream ``kind`` output.
    """
    if not existing_output(loc, kind, storage_options):
        return
    if loc.url:
        import fsspec

        fs, path = fsspec.core.url_to_fs(loc.target, **(storage_options or {}))
        fs.rm(path, recursive=True)
    elif os.path.isdir(loc.target):
        shutil.rmtree(loc.target)
    else:
        os.unlink(loc.target)




def write_file(loc: Location, write: Callable[[IO[bytes]], None], kind: str, overwrite: bool = False) -> Path:
    """Write a ``kind`` file (model, head) at ``loc`` atomically: into a temporary sibling that names
    its creator, then renamed into place. Refuses to replace anything but a rocketstream ``kind`` file,
    and that only with ``overwrite``; temporaries left by killed runs are removed first.

    Parameters
    ----------
    loc : Location
        A local file path.
    write : callable
        ``write(fh)`` writes the content to a binary file handle.
    kind : str
        ``"model"`` or ``"head"``.
    overwrite : bool, default False
        Replace an existing ``kind`` file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    UnsafeOutputError
        ``loc`` is a URL, or something other than a ``kind`` file is there.
    FileExistsError
        A ``kind`` file is there and ``overwrite`` is false.
    FileNotFoundError
        The directory does not exist.
    """
    if loc.url:
        raise UnsafeOutputError(f"{loc.display}: {kind} files are written to local paths only")
    final = loc.path
    if existing_output(loc, kind) and not overwrite:
        raise FileExistsError(f"{kind} file {loc.display} already exists; pass --overwrite / overwrite=True "
                              "to replace it")
    if not final.parent.is_dir():
        raise FileNotFoundError(f"directory {final.parent} does not exist; create it first")
    remove_stale_siblings(final)
    tmp = temp_sibling(final)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


__all__ = ["STORE_FORMATS", "existing_output", "remove_output", "write_file"]
