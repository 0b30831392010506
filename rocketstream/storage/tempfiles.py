"""Temporary siblings of an output (file or directory) that name their creator, and their cleanup.

A job writes ``final`` as the hidden sibling ``.<final.name>.<tag>-<host>-<pid>-<pid start>-<hex>`` and
renames it into place when complete. A job killed before that (SIGKILL, power loss) leaves the sibling
behind; :func:`remove_stale_siblings` removes those whose creator is gone: written on *this* host by a
pid that is dead, or reused by a process that started later (the same rule as the writer lock).
Siblings from another host or a live process are never removed. Old-style names without an owner
(``.<name>.tmp-<8 hex>`` / ``.<name>.old-<8 hex>``, written by earlier versions) are removed once
older than ``OLD_STYLE_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import time
import uuid
from pathlib import Path

from .lock import _pid_alive, _pid_start

log = logging.getLogger("rocketstream.storage")

#: an old-style temporary sibling (no recorded owner) is stale after this long
OLD_STYLE_SECONDS = 3600.0

_TAG = re.compile(r"[A-Za-z0-9_]+")


def _host() -> str:
    """This host's name reduced to ``[A-Za-z0-9_-]`` (dots and others become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "unknown"


def temp_sibling(final: Path, tag: str = "tmp") -> Path:
    """A new hidden sibling path of ``final`` for a temporary file or directory, naming its creator.

    Parameters
    ----------
    final : pathlib.Path
        The path the temporary will be renamed to.
    tag : str, default "tmp"
        Letters, digits or ``_``; part of the name (e.g. ``"old"`` for a replaced output).

    Returns
    -------
    pathlib.Path
        ``.<final.name>.<tag>-<host>-<pid>-<pid start>-<hex>`` beside ``final`` (nothing is created).

    Raises
    ------
    ValueError
        A ``tag`` with other characters.
    """
    if not _TAG.fullmatch(tag):
        raise ValueError(f"tag must be letters, digits or '_', got {tag!r}")
    final = Path(final)
    pid = os.getpid()
    owner = f"{_host()}-{pid}-{_pid_start(pid) or 0}"
    return final.with_name(f".{final.name}.{tag}-{owner}-{uuid.uuid4().hex[:12]}")


def _patterns(name: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The current naming scheme (with owner) and the old-style one, for siblings of ``name``."""
    stem = re.escape(f".{name}.")
    owner = r"(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)-(?P<start>\d+)"
    owned = re.compile(stem + r"[A-Za-z0-9_]+-" + owner + r"-[0-9a-f]{12}")
    old = re.compile(stem + r"(?:tmp|old)-[0-9a-f]{8}")
    return owned, old


def _stale_reason(entry: os.DirEntry[str], owned: re.Pattern[str], old: re.Pattern[str]) -> str | None:
    """Why the sibling ``entry`` may be removed, or None to keep it."""
    m = owned.fullmatch(entry.name)
    if m:
        pid, start = int(m["pid"]), int(m["start"]) or None
        if m["host"] != _host() or _pid_alive(pid, start):
            return None
        return f"left by pid {pid} on this host, which is gone"
    if old.fullmatch(entry.name):
        age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        return f"old-style name, {age / 3600:.1f} h old" if age > OLD_STYLE_SECONDS else None
    return None


def _remove(path: Path) -> None:
    """Remove a file, link or directory tree (links are not followed)."""
    if stat.S_ISDIR(path.lstat().st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_stale_siblings(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` whose creator is gone (see the module docstring).

    A sibling that cannot be removed is logged and left in place.

    Parameters
    ----------
    final : pathlib.Path
        The output whose temporaries to clean up.

    Returns
    -------
    list of pathlib.Path
        The paths removed.
    """
    final = Path(final)
    owned, old = _patterns(final.name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(final.parent))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        try:
            reason = _stale_reason(entry, owned, old)
            if reason is None:
                continue
            _remove(Path(entry.path))
        except FileNotFoundError:  # removed meanwhile (another job cleaning up)
            continue
        except OSError as exc:
            log.warning("could not remove the stale temporary %s (%s); delete it by hand", entry.path, exc)
            continue
        log.info("removed the stale temporary %s (%s)", entry.path, reason)
        removed.append(Path(entry.path))
    return removed
