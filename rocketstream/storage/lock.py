"""A writer lock for an output store: one job writes a given output at a time.

The lock is the small JSON file (or object) ``<output>.lock`` *beside* the store, e.g. ``f.zarr.lock`` for
``f.zarr`` (inside the store Zarr would warn about an unknown object and ``overwrite`` would delete it).
It holds the owner's host, pid, the pid's start time, the start time of the job and a random token.

- Local paths: created with ``O_CREAT | O_EXCL`` (atomic), so two jobs can never both hold it.
- fsspec URLs: best effort (object stores have no portable create-if-absent): the job checks that no
  lock exists, writes its own, reads it back and backs off if another job's token is there.
- Stale locks: a lock written on *this* host whose process is gone (the pid is dead, or reused by a
  process that started later) is stale and broken with a warning, so a job killed with SIGKILL can be
  resumed. A lock from another host is never broken automatically: the error names the lock to delete
  once you know that job is gone. An unreadable (torn) lock older than ``TORN_LOCK_SECONDS`` is stale.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import StoreLockedError
from .locations import is_url, redact

log = logging.getLogger("rocketstream.storage")

#: an unparsable lock (its writer died between creating and filling it) is stale after this long
TORN_LOCK_SECONDS = 30.0




def lock_path(output: str | os.PathLike) -> str:
    """Where the lock of ``output`` lives: ``<output>.lock`` beside it.

    Parameters
    ----------
    output : str or os.PathLike
        The output's path or URL.

    Returns
    -------
    str
    """
    text = str(output).rstrip("/") if is_url(output) else os.fspath(Path(output).expanduser())
    return text.rstrip("/") + ".lock"


def _pid_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int, start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    now = _pid_start(pid)
    return start is None or now is None or now == start


def _describe(owner: dict[str, Any]) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('started')}"


class StoreLock:
    """Context manager holding the writer lock of ``output`` (see the module docstring).

    Parameters
    ----------
    output : str or os.PathLike
        The output store's path or URL.
    storage_options : dict, optional
        fsspec options for a URL.

    Attributes
    ----------
    path : str
        The lock file (see :func:`lock_path`).
    token : str
        This holder's random token.
    held : bool
        Whether the lock is held now.

    Raises
    ------
    StoreLockedError
        On entry, when another live job holds the lock.
    """

    def __init__(self, output: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> None:
        self.output = str(output)
        self.path = lock_path(output)
        self.shown, self.shown_lock = redact(self.output), redact(self.path)  # for files, logs, messages
        self.storage_options = storage_options or {}
        self.token = uuid.uuid4().hex
        self.held = False
        self._fs: Any = None

    # -- content --------------------------------------------------------------------------------
    def _record(self) -> bytes:
        pid = os.getpid()
        return json.dumps({
            "owner": "rocketstream", "output": self.shown, "host": socket.gethostname(), "pid": pid,
            "pid_start": _pid_start(pid), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "token": self.token,
        }).encode()

    def _stale(self, raw: bytes | None, age: float) -> tuple[bool, dict[str, Any]]:
        """Whether a lock with content ``raw`` (``age`` seconds old) may be broken, and its owner."""
        try:
            owner = json.loads(raw or b"")
            if not isinstance(owner, dict):
                raise ValueError
        except ValueError:
            return age > TORN_LOCK_SECONDS, {"pid": "?", "host": "?", "started": f"{age:.0f} s ago"}
        if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            return False, owner
        return not _pid_alive(owner["pid"], owner.get("pid_start")), owner

    def _refuse(self, owner: dict[str, Any]) -> StoreLockedError:
        return StoreLockedError(
            f"output {self.shown} is being written by another job ({_describe(owner)}); wait for it to "
            f"finish, or if that job is gone delete the lock {self.shown_lock} and rerun (with --resume)")

    # -- local files ----------------------------------------------------------------------------
    def _acquire_local(self) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    raw, age = path.read_bytes(), time.time() - path.stat().st_mtime
                except FileNotFoundError:  # released meanwhile: try again
                    continue
                stale, owner = self._stale(raw, age)
                if not stale:
                    raise self._refuse(owner) from None
                self._break_local(path, raw, owner)
                continue
            except OSError as exc:
                raise PermissionError(f"cannot create the lock file {path} ({exc.strerror}); the output "
                                      "location must be writable") from exc
            with os.fdopen(fd, "wb") as f:
                f.write(self._record())
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return
        raise StoreLockedError(f"could not take the lock {path} of output {self.shown}: other jobs keep "
                               "taking it; make sure only one job writes this output")

    def _break_local(self, path: Path, raw: bytes, owner: dict[str, Any]) -> None:
        """Move a stale lock aside, atomically, and delete it if it still is the stale one."""
        aside = path.with_name(f"{path.name}.stale-{self.token}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        moved = aside.read_bytes()
        if moved != raw:  # another job replaced it in between: put theirs back
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
            aside.unlink()
            raise self._refuse(self._stale(moved, 0.0)[1])
        aside.unlink()
        log.warning("broke the stale lock %s of output %s (%s: that process is gone)", path, self.shown,
                    _describe(owner))

    # -- fsspec URLs ----------------------------------------------------------------------------
    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            import fsspec

            self._fs, self._fspath = fsspec.core.url_to_fs(self.path, **self.storage_options)
        return self._fs, self._fspath

    def _read_remote(self) -> bytes | None:
        fs, p = self._filesystem()
        fs.invalidate_cache()
        try:
            return fs.cat_file(p)
        except FileNotFoundError:
            return None

    def _acquire_remote(self) -> None:
        fs, p = self._filesystem()
        raw = self._read_remote()
        if raw is not None:
            stale, owner = self._stale(raw, 0.0 if raw.strip() else TORN_LOCK_SECONDS + 1)
            if not stale:
                raise self._refuse(owner)
            log.warning("broke the stale lock %s of output %s (%s: that process is gone)", self.shown_lock,
                        self.shown, _describe(owner))
        mine = self._record()
        fs.pipe_file(p, mine)
        time.sleep(0.05)  # let a racing writer land, then check whose lock survived
        now = self._read_remote()
        if now != mine:
            _, owner = self._stale(now, 0.0)
            raise self._refuse(owner)
        self.held = True

    # -- public ---------------------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreLockedError` naming its holder.

        A stale lock (its process on this host is gone) is broken with a warning.

        Returns
        -------
        StoreLock
            ``self``.

        Raises
        ------
        StoreLockedError
            Another job holds the lock, or keeps taking it.
        PermissionError
            The lock file cannot be created (the output's directory is not writable).
        """
        if is_url(self.output):
            self._acquire_remote()
        else:
            self._acquire_local()
        return self

    def release(self) -> None:
        """Remove the lock if it is still ours.

        A failure to remove it is logged as a warning, not raised (it must not mask the job's outcome).
        """
        if not self.held:
            return
        self.held = False
        try:
            if is_url(self.output):
                if json.loads(self._read_remote() or b"{}").get("token") == self.token:
                    fs, p = self._filesystem()
                    fs.rm_file(p)
            else:
                path = Path(self.path)
                if json.loads(path.read_bytes() or b"{}").get("token") == self.token:
                    path.unlink()
        except (OSError, ValueError) as exc:  # never mask the job's own outcome
            log.warning("could not release the lock %s (%s); delete it by hand", self.shown_lock,
                        redact(str(exc)))

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
