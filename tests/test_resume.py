"""Kill a transform with SIGKILL partway, resume it: only the missing chunks are computed and the
result is bitwise identical to an uninterrupted run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import run_transform, transform_to_zarr
from rocketstream.core import fit, save, transform
from rocketstream.storage import FeatureStore

HELPER = Path(__file__).parent / "helpers" / "slow_transform.py"


def _chunk_files(out: Path) -> dict[str, tuple[int, bytes]]:
    files = [p for p in (out / "features" / "c").rglob("*") if p.is_file()]
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def test_sigkill_then_resume(tmp_path, caplog):
    x = make_data(240, 2, 100, seed=7)
    src = write_zarr(tmp_path / "x.zarr", x, 20)
    params = fit(x, num_features=336, random_state=3)
    save(params, tmp_path / "m.json")
    out = tmp_path / "f.zarr"
    n_chunks = 12
    cmd = [sys.executable, str(HELPER), src, str(tmp_path / "m.json"), str(out), "20", "0.4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = np.zeros(n_chunks, bool)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = FeatureStore.open(out).done()
            except (FileNotFoundError, ValueError):  # not created yet
                pass
            if done.sum() >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    store = FeatureStore.open(out)
    done = store.done()
    assert 3 <= done.sum() < n_chunks, done
    before = _chunk_files(out)

    with caplog.at_level(logging.INFO, logger="rocketstream.graph"):
        _, computed = run_transform(src, params, out, resume=True, scheduler="threads")
    assert computed == np.flatnonzero(~done).tolist()
    assert f"{len(computed)} of {n_chunks} chunks to compute ({int(done.sum())} already done)" in caplog.text
    after = _chunk_files(out)
    for i in np.flatnonzero(done):  # chunks finished before the kill are untouched
        key = f"features/c/{i}/0"
        assert after[key] == before[key]
    assert FeatureStore.open(out).is_complete()

    full = transform_to_zarr(src, params, tmp_path / "full.zarr")
    resumed = FeatureStore.open(out).features[:]
    assert np.array_equal(resumed, full[:])
    assert np.array_equal(resumed, transform(x, params).cpu().numpy())
    assert resumed.tobytes() == full[:].tobytes()
