"""Cluster loss: a distributed run whose workers are all gone, or whose scheduler died, stops in bounded
time with :class:`ClusterLostError`; a worker replaced within the timeout does not stop it.

The cluster is real: ``dask scheduler`` and ``dask worker`` processes on loopback, killed with SIGKILL.
Each process runs in its own session so that killing its process group leaves nothing behind; the
fixture kills whatever is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from helpers.cluster import Cluster
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import run_transform
from rocketstream.core import fit
from rocketstream.errors import ClusterLostError
from rocketstream.graph import schedule
from rocketstream.graph.schedule import CLUSTER_TIMEOUT_ENV, compute, resolve_cluster_timeout
from rocketstream.storage import FeatureStore

BOUND = 30.0  # seconds: ClusterLostError must come this soon after the loss (timeout 3 s)


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_scheduler()
        yield c
    finally:
        c.close()


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported by the test
            box["error"] = exc
        box["end"] = time.monotonic()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def _wait_until(cond: Callable[[], bool], what: str, box: dict, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert "end" not in box, f"the run ended before {what}: {box!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _sleepy(n: int, pause: float, marks: Path) -> da.Array:
    """``arange(n)`` summed through ``n`` tasks that each leave a mark in ``marks`` and sleep."""

    def slow(block):  # nested: pickled by value, so the workers need no test imports
        Path(marks, f"{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(pause)
        return block

    marks.mkdir(exist_ok=True)
    return da.arange(n, chunks=1).map_blocks(slow, meta=np.array((), dtype=np.int64)).sum()  # not run here


def _n_marks(marks: Path) -> int:
    return len(os.listdir(marks)) if marks.exists() else 0


def test_all_workers_killed_during_transform(tmp_path, cluster, monkeypatch):
    rows, n_chunks = 10, 40
    x = make_data(rows * n_chunks, 1, 100, seed=2)
    src = write_zarr(tmp_path / "x.zarr", x, rows)
    params = fit(x, num_features=200, random_state=0)

    def slow(block):  # nested: pickled by value
        time.sleep(0.5)
        return block

    source = da.from_zarr(src).map_blocks(slow, dtype=np.float32)
    worker = cluster.start_worker()
    cluster.wait_for_workers(1)
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "3")
    out = tmp_path / "f.zarr"
    thread, box = _in_thread(lambda: run_transform(source, params, out, chunk_size=rows,
                                                   scheduler=cluster.address))

    def some_done() -> bool:
        try:
            return int(FeatureStore.open(out).done().sum()) >= 1
        except (FileNotFoundError, ValueError):
            return False

    _wait_until(some_done, "the first chunk", box)
    killed = time.monotonic()  # before the kill: the run may see the worker gone before kill() returns
    cluster.kill(worker)
    thread.join(timeout=BOUND + 30)
    assert not thread.is_alive(), "the run did not stop after every worker was killed"
    error = box.get("error")
    assert isinstance(error, ClusterLostError), repr(box)
    message = str(error)
    assert f"all Dask workers of the scheduler at {cluster.address} are gone (none for 3 s)" in message
    assert "\n" not in message
    assert 3 <= box["end"] - killed < BOUND  # it waited the timeout for workers to come back, no more
    assert not FeatureStore.open(out).is_complete()


def test_scheduler_killed_mid_run(tmp_path, cluster, monkeypatch):
    cluster.start_worker()
    cluster.wait_for_workers(1)
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "3")
    marks = tmp_path / "marks"
    thread, box = _in_thread(lambda: compute(_sleepy(200, 0.5, marks), cluster.address))
    _wait_until(lambda: _n_marks(marks) >= 1, "the first task", box)
    cluster.kill(cluster.procs[0])
    killed = time.monotonic()
    thread.join(timeout=BOUND + 60)
    assert not thread.is_alive(), "the run did not stop after the scheduler was killed"
    error = box.get("error")
    assert isinstance(error, ClusterLostError), repr(box)
    assert "connection to the Dask scheduler at " + cluster.address in str(error)
    assert "\n" not in str(error)
    print(f"ClusterLostError {box['end'] - killed:.1f} s after the scheduler was killed: {error}")
    assert box["end"] - killed < BOUND + 40  # includes closing the client it connected


def test_scheduler_frozen_mid_run(tmp_path, cluster, monkeypatch):
    """A scheduler that stops answering (SIGSTOP: no closed connection, as with a lost network)."""
    cluster.start_worker()
    cluster.wait_for_workers(1)
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "3")
    marks = tmp_path / "marks"
    with Client(cluster.address, timeout="30s", set_as_default=False) as client:
        thread, box = _in_thread(lambda: compute(_sleepy(200, 0.5, marks), client))
        _wait_until(lambda: _n_marks(marks) >= 1, "the first task", box)
        os.killpg(cluster.procs[0].pid, signal.SIGSTOP)
        stopped = time.monotonic()
        thread.join(timeout=BOUND + 30)
        cluster.kill(cluster.procs[0])  # lets the client close at once
        assert not thread.is_alive(), "the run did not stop after the scheduler froze"
    error = box.get("error")
    assert isinstance(error, ClusterLostError), repr(box)
    assert str(error) == f"lost the connection to the Dask scheduler at {cluster.address} (for 3 s)"
    assert 2.5 <= box["end"] - stopped < BOUND  # timed from the last unanswered check (just before)


def test_worker_replaced_within_timeout(tmp_path, cluster, monkeypatch):
    seen: list[int | None] = []
    real = schedule._n_workers

    def spy(client, limit):
        n = real(client, limit)
        seen.append(n)
        return n

    monkeypatch.setattr(schedule, "_n_workers", spy)
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "0.5")  # the keyword below wins
    worker = cluster.start_worker()
    cluster.wait_for_workers(1)
    marks, n = tmp_path / "marks", 16
    with Client(cluster.address, timeout="30s", set_as_default=False) as client:
        thread, box = _in_thread(lambda: compute(_sleepy(n, 0.3, marks), client, cluster_timeout=60))
        _wait_until(lambda: _n_marks(marks) >= 2, "two tasks", box)
        cluster.kill(worker)
        _wait_until(lambda: 0 in seen, "the watchdog to see no workers", box)
        cluster.start_worker()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the run did not finish after a new worker joined"
        assert "error" not in box, repr(box["error"])
        assert box["value"] == n * (n - 1) // 2
        assert seen.count(0) >= 1 and seen[-1] != 0
        assert _n_marks(marks) > n  # tasks lost with the killed worker ran again


@pytest.fixture(scope="module")
def local_client() -> Iterator[Client]:
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c, \
            Client(c, set_as_default=False) as client:
        yield client


def test_healthy_run_and_task_errors(local_client):
    assert schedule._n_workers(local_client, 10) == 1
    assert compute(da.arange(10, chunks=2).sum(), local_client, cluster_timeout=0.5) == 45
    assert compute(da.arange(10, chunks=2).sum(), local_client, progress=True) == 45  # not the default

    def fail(exc):
        raise exc

    with pytest.raises(ValueError, match="bad block") as info:
        compute(dask.delayed(fail)(ValueError("bad block")), local_client)
    assert type(info.value) is ValueError
    with pytest.raises(TimeoutError, match="slow store"):  # a task's TimeoutError is not a poll timeout
        compute(dask.delayed(fail)(TimeoutError("slow store")), local_client)


def test_closed_client_fails_at_once():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c:
        client = Client(c, set_as_default=False)
        client.close()
        start = time.monotonic()
        with pytest.raises(ClusterLostError, match=f"Dask scheduler at {c.scheduler_address} is closed"):
            compute(da.arange(10, chunks=2).sum(), client)
        assert time.monotonic() - start < BOUND


def test_cluster_timeout_setting(monkeypatch):
    monkeypatch.delenv(CLUSTER_TIMEOUT_ENV, raising=False)
    assert resolve_cluster_timeout() == 60
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, " 2.5 ")
    assert resolve_cluster_timeout() == 2.5
    assert resolve_cluster_timeout(7) == 7
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "inf")
    assert resolve_cluster_timeout() == float("inf")
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=CLUSTER_TIMEOUT_ENV):
            resolve_cluster_timeout()
    with pytest.raises(ValueError, match="cluster_timeout"):
        resolve_cluster_timeout(0)


def _cli_in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """``rocketstream ARGS`` under a pseudo-terminal (``script``), as a user types it: progress on."""
    exe = Path(sys.executable).parent / "rocketstream"
    command = " ".join([str(exe), *args]) + " 2>err.txt"
    return subprocess.Popen(["script", "-qec", command, "/dev/null"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def test_cli_in_a_terminal_against_a_cluster_that_goes_away(tmp_path, cluster):
    """The everyday cluster path: relative paths given in one directory, workers started in another,
    progress on (a terminal); every worker killed mid-run gives exit 2 and one line saying --resume;
    with a new worker, --resume finishes with features equal to the in-memory transform."""
    from rocketstream.core import save
    from rocketstream.core import transform as core_transform

    client_dir = tmp_path / "client"
    client_dir.mkdir()
    x = make_data(40, 1, 60_000, seed=4)  # one series per chunk, ~0.05 s each on one thread
    write_zarr(client_dir / "x.zarr", x, 1)
    params = fit(x, num_features=1000, random_state=0)
    save(params, client_dir / "m.json")
    worker = cluster.start_worker()  # its working directory is tmp_path, not client_dir
    cluster.wait_for_workers(1)
    env = dict(os.environ, ROCKETSTREAM_CLUSTER_TIMEOUT="3", COLUMNS="100")
    args = ["transform", "x.zarr", "--model", "m.json", "--output", "f.zarr", "--scheduler",
            cluster.address]
    proc = _cli_in_terminal(args, client_dir, env)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if int(FeatureStore.open(client_dir / "f.zarr").done().sum()) >= 2:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0]
    cluster.kill(worker)
    out = proc.communicate(timeout=BOUND + 60)[0].decode(errors="replace")
    err = (client_dir / "err.txt").read_text().strip().splitlines()
    assert proc.returncode == 2, (out, err)
    assert len(err) == 1 and err[0].startswith("rocketstream transform: error: all Dask workers"), err
    assert "rerun with --resume" in err[0]
    assert not FeatureStore.open(client_dir / "f.zarr").is_complete()

    cluster.start_worker()
    cluster.wait_for_workers(1)
    proc = _cli_in_terminal([*args, "--resume"], client_dir, env)
    out = proc.communicate(timeout=300)[0].decode(errors="replace")
    assert proc.returncode == 0, (out, (client_dir / "err.txt").read_text())
    store = FeatureStore.open(client_dir / "f.zarr")
    assert store.is_complete()
    assert np.array_equal(store.features[:], core_transform(x, params).cpu().numpy())


def test_cli_with_no_workers_fails_before_writing(tmp_path, cluster, capsys, monkeypatch):
    from rocketstream.cli.main import main
    from rocketstream.core import save

    x = make_data(20, 1, 50, seed=1)
    write_zarr(tmp_path / "x.zarr", x, 10)
    save(fit(x, num_features=168, random_state=0), tmp_path / "m.json")
    monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, "2")
    code = main(["transform", str(tmp_path / "x.zarr"), "--model", str(tmp_path / "m.json"), "--output",
                 str(tmp_path / "f.zarr"), "--scheduler", cluster.address])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no workers (none for 2 s)" in err[0], err
    assert "dask worker" in err[0]
    assert not (tmp_path / "f.zarr").exists()


def test_a_refused_address_fails_at_once_and_a_listening_one_passes():
    """Nothing listening at a tcp:// address is told apart from a slow or remote scheduler."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert schedule._refused(f"tcp://127.0.0.1:{port}", grace=0.5) is None
        assert schedule._refused(f"127.0.0.1:{port}", grace=0.5) is None  # no scheme means tcp
    assert isinstance(schedule._refused(f"tcp://127.0.0.1:{port}", grace=0.5), ConnectionRefusedError)
    assert schedule._refused("inproc://10.0.0.1/1/1", grace=0.5) is None  # other kinds: the client decides
