"""Worker loss: SIGKILL one worker process of a real LocalCluster while a transform runs.

The run completes (dask reschedules; with ``allowed-failures=0`` the API itself resubmits the missing
chunks after ``KilledWorker``), the features are bitwise identical to a clean run, every done marker is
set and every chunk digest verifies.

Rule enforced on writes (checked through the audit log, ``ROCKETSTREAM_AUDIT_LOG``): every chunk is
written at least once; a chunk is written more than once only when a worker was lost (at most one
re-write per worker thread), and every write of a chunk carries the same sha256, equal to the digest of
the final block: re-writes are idempotent. A task re-run for a chunk that is already marked done writes
nothing (a ``skip`` event).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import defaultdict

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import run_transform
from rocketstream.core import fit
from rocketstream.storage import FeatureStore
from rocketstream.storage.features import AUDIT_ENV, DIGESTS, block_digest

N_CHUNKS, ROWS, PAUSE = 30, 10, 0.2


def _slow_source(src: str) -> da.Array:
    """The Zarr input read through a slow step (like slow storage) so that a kill lands mid-run."""

    def slow(block):  # nested: pickled by value, so the worker processes need no test imports
        time.sleep(PAUSE)
        return block

    return da.from_zarr(src).map_blocks(slow, dtype=np.float32)


def _writes(log_path) -> dict[int, list[dict]]:
    events: dict[int, list[dict]] = defaultdict(list)
    for line in log_path.read_text().splitlines():
        e = json.loads(line)
        events[e["chunk"]].append(e)
    return events


@pytest.mark.parametrize("allowed_failures", [None, 0], ids=["dask-reschedules", "api-retries"])
def test_worker_killed_mid_run(tmp_path, monkeypatch, caplog, allowed_failures):
    x = make_data(N_CHUNKS * ROWS, 1, 200, seed=5)
    src = write_zarr(tmp_path / "x.zarr", x, ROWS)
    params = fit(x, num_features=1000, random_state=1)
    clean, _ = run_transform(src, params, tmp_path / "clean.zarr", scheduler="threads")

    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv(AUDIT_ENV, str(audit))  # inherited by the worker processes spawned below
    out = tmp_path / "f.zarr"
    config = {} if allowed_failures is None else {"distributed.scheduler.allowed-failures": allowed_failures}
    with dask.config.set(config), LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", memory_limit="2GiB") as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        result: dict = {}

        def job():
            try:
                result["value"] = run_transform(_slow_source(src), params, out, chunk_size=ROWS,
                                                 scheduler=client)
            except BaseException as exc:  # reported by the assertion below
                result["error"] = exc

        with caplog.at_level(logging.INFO, logger="rocketstream"):
            thread = threading.Thread(target=job)
            thread.start()
            deadline = time.monotonic() + 120
            n_done = 0
            while time.monotonic() < deadline and thread.is_alive():
                try:
                    n_done = int(FeatureStore.open(out).done().sum())
                except (FileNotFoundError, ValueError):
                    n_done = 0
                if n_done >= 6:
                    break
                time.sleep(0.02)
            os.kill(victim, signal.SIGKILL)
            killed_at = n_done
            thread.join(timeout=180)
        assert not thread.is_alive(), "the transform did not finish after the worker was killed"
        assert "error" not in result, repr(result.get("error"))
        assert killed_at < N_CHUNKS - 4, f"the kill landed too late ({killed_at} chunks done)"
        new_pids = set(client.run(os.getpid).values())
        assert victim not in new_pids  # the victim is really gone (the nanny started a new worker)

    store, computed = result["value"]
    assert computed == list(range(N_CHUNKS))
    assert store.is_complete()
    assert all(store.verify_chunk(i) for i in range(N_CHUNKS))
    got = store.features[:]
    assert got.tobytes() == clean.features[:].tobytes()  # bitwise identical to the clean run

    events = _writes(audit)
    digests = store.group[DIGESTS][:]
    duplicated = []
    for i in range(N_CHUNKS):
        writes = [e for e in events[i] if e["event"] == "write"]
        assert writes, f"chunk {i} was never written"
        final = block_digest(got[i * ROWS : (i + 1) * ROWS]).hex()
        assert bytes(digests[i]).hex() == final
        assert {e["sha256"] for e in writes} == {final}, f"chunk {i}: writes differ"
        if len(writes) > 1:
            duplicated.append(i)
    assert len(duplicated) <= 2, f"chunks written more than once: {duplicated}"
    skips = sum(e["event"] == "skip" for ev in events.values() for e in ev)
    print(f"killed worker pid {victim} after {killed_at}/{N_CHUNKS} chunks; re-written chunks: "
          f"{duplicated}; re-run tasks that found their chunk done: {skips}")
    if allowed_failures == 0:
        assert "lost a worker (KilledWorker" in caplog.text
