"""Run a command under a pseudo-terminal, as a user at a terminal would, and collect what it shows."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
from collections.abc import Sequence
from pathlib import Path

#: a hang guard for a command on the terminal, not a measurement
DEADLINE = 300.0


def run_on_terminal(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None, rows: int = 24,
                    cols: int = 100) -> tuple[int, str]:
    """Run ``cmd`` with a new pseudo-terminal (``rows`` x ``cols``) as stdin, stdout and stderr.

    Parameters
    ----------
    cmd : sequence of str
        The command.
    cwd : pathlib.Path
        Its working directory.
    env : dict, optional
        Its environment (default: this one).
    rows, cols : int
        The terminal's size, as a terminal emulator sets it.

    Returns
    -------
    returncode : int
    output : str
        Everything written to the terminal (stdout and stderr together, ``\\r\\n`` line ends).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        proc = subprocess.Popen(list(cmd), stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                start_new_session=True)
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], DEADLINE)
            if not ready:
                proc.kill()
                raise AssertionError(f"{cmd[0]} showed nothing for {DEADLINE:g} s: {b''.join(chunks)!r}")
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: every writer closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", errors="replace")
