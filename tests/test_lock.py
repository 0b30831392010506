"""Two jobs writing the same output: the second is refused with a clear error (the writer lock
``<output>.lock``), never interleaved; stale locks (dead local pid, torn lock file) are broken."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import run_transform
from rocketstream.core import fit, save, transform
from rocketstream.storage import FeatureStore
from rocketstream.storage.lock import TORN_LOCK_SECONDS, StoreLock, StoreLockedError, lock_path

HELPERS = Path(__file__).parent / "helpers"
CLI = Path(sys.executable).parent / "rocketstream"


def test_second_job_is_refused_while_the_first_runs(tmp_path):
    x = make_data(160, 1, 80, seed=1)
    src = write_zarr(tmp_path / "x.zarr", x, 20)
    params = fit(x, num_features=336, random_state=0)
    save(params, tmp_path / "m.json")
    out = tmp_path / "f.zarr"
    lock = Path(lock_path(out))
    gate = tmp_path / "gate"  # the first job waits after each chunk while this file exists
    gate.touch()
    cmd = [sys.executable, str(HELPERS / "gated_transform.py"), src, str(tmp_path / "m.json"), str(out), "20",
           str(gate)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            try:
                if FeatureStore.open(out).done().sum() >= 1:
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        assert first.poll() is None and json.loads(lock.read_bytes())["pid"] == first.pid

        # a second process (the CLI): --overwrite would delete the first job's store; it is refused
        res = subprocess.run([str(CLI), "transform", src, "--model", str(tmp_path / "m.json"), "--output",
                              str(out), "--overwrite", "--no-progress"], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 2, res.stderr
        err = res.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr
        assert f"output {out} is being written by another job (pid {first.pid} on " in err[0]
        assert f"delete the lock {lock}" in err[0]
        # this process as a third job: resume is refused too, and nothing is written
        with pytest.raises(StoreLockedError, match=f"pid {first.pid}"):
            run_transform(src, params, out, resume=True, scheduler="synchronous")
        assert first.poll() is None, "the first job must still be running"
        assert FeatureStore.open(out).done().sum() == 1  # held after its first chunk: nothing interleaved
        gate.unlink()
        assert first.wait(timeout=120) == 0, first.stdout.read().decode()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not lock.exists()  # released by the first job
    store = FeatureStore.open(out)
    assert store.is_complete() and all(store.verify_chunk(i) for i in range(store.n_chunks))
    assert store.features[:].tobytes() == transform(x, params).cpu().numpy().tobytes()


def _write_lock(path: Path, **owner) -> None:
    path.write_text(json.dumps({"owner": "rocketstream", "started": "then", "token": "x", **owner}))


def test_stale_and_foreign_locks(tmp_path, caplog):
    out = tmp_path / "f.zarr"
    lock = Path(lock_path(out))
    assert lock == tmp_path / "f.zarr.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(lock, host=socket.gethostname(), pid=dead.pid)  # its process is gone: stale
    with caplog.at_level(logging.WARNING, logger="rocketstream"), StoreLock(out) as held:
        assert json.loads(lock.read_bytes())["token"] == held.token
    assert f"broke the stale lock {lock}" in caplog.text and not lock.exists()

    _write_lock(lock, host="another-host.example", pid=1)  # another host: never broken automatically
    with pytest.raises(StoreLockedError, match=r"pid 1 on another-host\.example.*delete the lock"):
        StoreLock(out).acquire()
    _write_lock(lock, host=socket.gethostname(), pid=os.getpid(), pid_start=0)  # pid reused since: stale
    StoreLock(out).acquire().release()
    assert not lock.exists()

    lock.write_bytes(b"")  # torn lock: refused while fresh (its writer may be filling it) ...
    with pytest.raises(StoreLockedError):
        StoreLock(out).acquire()
    old = time.time() - TORN_LOCK_SECONDS - 5  # ... broken once old
    os.utime(lock, (old, old))
    StoreLock(out).acquire().release()


def test_only_one_of_many_racing_jobs_gets_the_lock(tmp_path):
    out = tmp_path / "f.zarr"
    barrier = threading.Barrier(8)
    results: list[object] = []

    def race() -> None:
        barrier.wait()
        try:
            results.append(StoreLock(out).acquire())
        except StoreLockedError as exc:
            results.append(exc)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, StoreLock)]
    assert len(winners) == 1 and sum(isinstance(r, StoreLockedError) for r in results) == 7
    winners[0].release()


def test_lock_is_released_after_a_failed_run(tmp_path):
    x = make_data(40, 1, 50)
    x[25, 0, 3] = np.nan  # fails in chunk 1, after the store was created
    params = fit(make_data(40, 1, 50), num_features=84, random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        run_transform(x, params, tmp_path / "f.zarr", chunk_size=20, scheduler="synchronous")
    assert not Path(lock_path(tmp_path / "f.zarr")).exists()
    assert not FeatureStore.open(tmp_path / "f.zarr").is_complete()  # nothing half-written looks complete
