"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes on loopback.

Each process runs in its own session (process group), so that killing the group leaves nothing behind;
:meth:`Cluster.close` kills whatever is left. Logs go to files in the cluster's directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from distributed import Client

DASK = Path(sys.executable).parent / "dask"  # the venv's console script


class Cluster:
    """A ``dask scheduler`` and its ``dask worker`` processes, each in its own process group.

    Parameters
    ----------
    tmp : pathlib.Path
        Directory for the scheduler file and the logs (and the default working directory).
    worker_cwd : pathlib.Path, optional
        Working directory of the workers (default ``tmp``): another one than the client's shows that
        relative paths are resolved where they are given.
    env : dict, optional
        More environment variables for every process.
    """

    def __init__(self, tmp: Path, worker_cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.tmp, self.procs, self.file = tmp, [], tmp / "scheduler.json"
        self.worker_cwd = worker_cwd or tmp
        self.env = dict(env or {})
        self.address = ""

    def _spawn(self, args: list[str], name: str, cwd: Path) -> subprocess.Popen:
        env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__IDLE_TIMEOUT="300s", **self.env)  # safety net
        with open(self.tmp / f"{name}-{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                    cwd=cwd, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_scheduler(self) -> str:
        """Start the scheduler on a free loopback port; returns its address."""
        proc = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                            str(self.file), "--dashboard-address", ":0", "--no-show"], "scheduler", self.tmp)
        deadline = time.monotonic() + 60  # a hang guard, not a measurement
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                self.address = json.loads(self.file.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise AssertionError(f"the scheduler did not start: {self.log('scheduler')}")

    def start_worker(self, nthreads: int = 1) -> subprocess.Popen:
        """Start one worker process (no nanny) with ``nthreads`` threads, in ``worker_cwd``."""
        return self._spawn(["worker", "--scheduler-file", str(self.file), "--nworkers", "1", "--nthreads",
                            str(nthreads), "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                            "--death-timeout", "60"], "worker", self.worker_cwd)

    def wait_for_workers(self, n: int) -> None:
        """Block until ``n`` workers are connected."""
        with Client(self.address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=120)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the process group of ``proc`` and reap it."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        """Kill every process this cluster started."""
        for proc in reversed(self.procs):
            self.kill(proc)

    def log(self, name: str) -> str:
        """The tails of the logs of the processes called ``name`` (scheduler, worker)."""
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.tmp.glob(f"{name}-*.log"))
