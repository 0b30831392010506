"""Crashes of the whole job: SIGKILL during transform (the stale lock is broken on resume) and during
softmax training (resume gives the uninterrupted result bit for bit), and torn or corrupted chunks.

Detection rule for torn chunks: each chunk is written block -> sha256 digest -> done marker. On resume
every block marked done is read back and hashed; a block that cannot be decoded (truncated file), reads
back different values (corrupted, or another chunk's bytes) or has no digest is unmarked and recomputed,
as is every block without a marker (written, but the job died before the marker).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import run_transform
from rocketstream.cli.main import main
from rocketstream.core import fit, save, transform
from rocketstream.heads import SoftmaxHead, load_checkpoint
from rocketstream.storage import FeatureStore
from rocketstream.storage.lock import lock_path

HELPERS = Path(__file__).parent / "helpers"


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _n_done(out: Path) -> int:
    try:
        return int(FeatureStore.open(out).done().sum())
    except (FileNotFoundError, ValueError):
        return 0


def test_transform_sigkill_stale_lock_is_broken_on_resume(tmp_path, caplog, capsys):
    x = make_data(160, 2, 80, seed=2)
    src = write_zarr(tmp_path / "x.zarr", x, 20)
    params = fit(x, num_features=336, random_state=4)
    save(params, tmp_path / "m.json")
    out = tmp_path / "f.zarr"
    cmd = [sys.executable, str(HELPERS / "slow_transform.py"), src, str(tmp_path / "m.json"), str(out), "20",
           "0.3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _kill_when(proc, lambda: _n_done(out) >= 2)
    lock = Path(lock_path(out))
    owner = json.loads(lock.read_bytes())  # left behind by the killed job
    assert owner["pid"] == proc.pid and owner["output"] == str(out)
    assert 2 <= _n_done(out) < 8

    with caplog.at_level(logging.INFO, logger="rocketstream"):
        assert main(["transform", src, "--model", str(tmp_path / "m.json"), "--output", str(out),
                     "--resume", "--no-progress"]) == 0
    assert f"broke the stale lock {lock}" in caplog.text and f"pid {proc.pid}" in caplog.text
    assert not lock.exists()
    store = FeatureStore.open(out)
    assert store.is_complete()
    assert store.features[:].tobytes() == transform(x, params).cpu().numpy().tobytes()


def _chunk_file(out: Path, i: int) -> Path:
    return out / "features" / "c" / str(i) / "0"


def test_torn_and_corrupted_chunks_are_detected_and_rewritten(tmp_path, caplog):
    x = make_data(160, 1, 60, seed=3)
    src = write_zarr(tmp_path / "x.zarr", x, 20)
    params = fit(x, num_features=500, random_state=0)
    expected = transform(x, params).cpu().numpy()
    out = tmp_path / "f.zarr"
    store, _ = run_transform(src, params, out, scheduler="threads")
    assert store.is_complete() and all(store.verify_chunk(i) for i in range(8))

    f1 = _chunk_file(out, 1)  # torn mid-write: truncated chunk file under a set marker
    f1.write_bytes(f1.read_bytes()[: f1.stat().st_size // 2])
    _chunk_file(out, 2).write_bytes(_chunk_file(out, 5).read_bytes())  # valid chunk, wrong content
    f3 = _chunk_file(out, 3)  # a flipped byte
    raw = bytearray(f3.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f3.write_bytes(bytes(raw))
    g = zarr.open_group(str(out), mode="r+")  # a block written without its marker (job died between)
    g["chunk_done"][4] = 0
    g["features"][80:100] = np.zeros((20, expected.shape[1]), np.float32)
    (out / "chunk_done" / "c" / "6").write_bytes(b"")  # a torn marker
    assert not any(FeatureStore.open(out).verify_chunk(i) for i in (1, 2, 3, 4, 6))

    with caplog.at_level(logging.INFO, logger="rocketstream"):
        store, computed = run_transform(src, params, out, resume=True, scheduler="threads")
    assert computed == [1, 2, 3, 4, 6]
    assert "3 chunk(s) marked done" in caplog.text and "fail their sha256 check" in caplog.text
    assert all(store.verify_chunk(i) for i in range(8))
    assert store.features[:].tobytes() == expected.tobytes()

    # --no-verify trusts the markers: a corrupted block marked done stays (the documented trade-off)
    _chunk_file(out, 2).write_bytes(_chunk_file(out, 5).read_bytes())
    _, computed = run_transform(src, params, out, resume=True, verify=False, scheduler="threads")
    assert computed == [] and not FeatureStore.open(out).verify_chunk(2)


@pytest.fixture
def train_data(tmp_path):
    x = make_data(320, 1, 60, seed=9)
    src = write_zarr(tmp_path / "x.zarr", x, 40)
    run_transform(src, fit(x, num_features=168, random_state=2), tmp_path / "feat.zarr", scheduler="threads")
    np.save(tmp_path / "y.npy", np.arange(320) % 3)
    return str(tmp_path / "feat.zarr"), str(tmp_path / "y.npy")


def _train_args(feat: str, labels: str, out: Path, ckpt: Path) -> list[str]:
    return [feat, "--labels", labels, "--head", "softmax", "--output", str(out), "--checkpoint-dir",
            str(ckpt), "--epochs", "5", "--batch-size", "32", "--lr", "1e-3", "--seed", "5"]


def test_softmax_sigkill_mid_epoch_then_resume_is_identical(tmp_path, train_data):
    feat, labels = train_data
    full_ckpt, cut_ckpt = tmp_path / "full_ckpt", tmp_path / "cut_ckpt"
    cmd = [sys.executable, str(HELPERS / "slow_train.py"), "0.05", "--",
           *_train_args(feat, labels, tmp_path / "cut.npz", cut_ckpt)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def two_epochs() -> bool:
        try:
            state = load_checkpoint(cut_ckpt)
        except Exception:  # noqa: BLE001 - being replaced right now
            return False
        return state is not None and state["epoch"] >= 2

    _kill_when(proc, two_epochs)
    killed_epoch = load_checkpoint(cut_ckpt)["epoch"]
    assert 2 <= killed_epoch < 5 and not (tmp_path / "cut.npz").exists()  # died inside a later epoch

    assert main(["train", *_train_args(feat, labels, tmp_path / "cut.npz", cut_ckpt), "--resume"]) == 0
    assert main(["train", *_train_args(feat, labels, tmp_path / "full.npz", full_ckpt)]) == 0
    resumed, full = SoftmaxHead.load(tmp_path / "cut.npz"), SoftmaxHead.load(tmp_path / "full.npz")
    assert resumed.weight_.tobytes() == full.weight_.tobytes()
    assert resumed.bias_.tobytes() == full.bias_.tobytes()
    assert resumed.history_ == full.history_ and len(full.history_["epoch"]) == 5
    assert load_checkpoint(cut_ckpt)["sha256"] == load_checkpoint(full_ckpt)["sha256"]


def test_predict_sigkill_then_resume_equals_a_clean_run(tmp_path, capsys):
    from rocketstream.api.predict import open_predictions
    from rocketstream.heads import RidgeHead
    from rocketstream.storage.predictions import PredictionStore

    x = make_data(160, 2, 80, seed=3)
    src = write_zarr(tmp_path / "x.zarr", x, 20)
    params = fit(x, num_features=336, random_state=1)
    save(params, tmp_path / "m.json")
    feats = transform(x, params).cpu().numpy()
    RidgeHead().fit(feats, np.arange(160) % 3, model=params).save(tmp_path / "h.npz")
    out = tmp_path / "p.zarr"

    def n_done() -> int:
        try:
            return int(PredictionStore.open(out).done().sum())
        except (FileNotFoundError, ValueError):
            return 0

    proc = subprocess.Popen([sys.executable, str(HELPERS / "slow_predict.py"), src, str(tmp_path / "m.json"),
                             str(tmp_path / "h.npz"), str(out), "20", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _kill_when(proc, lambda: n_done() >= 2)
    partial = n_done()
    assert 2 <= partial < 8
    with pytest.raises(ValueError, match="incomplete .*--resume"):
        open_predictions(out)
    argv = ["predict", src, "--model", str(tmp_path / "m.json"), "--head", str(tmp_path / "h.npz"),
            "--no-progress"]
    assert main([*argv, "--output", str(out)]) == 2  # the output exists: resume or overwrite
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--output", str(out), "--resume"]) == 0
    assert main([*argv, "--output", str(tmp_path / "clean.zarr")]) == 0
    resumed, clean = open_predictions(out), open_predictions(tmp_path / "clean.zarr")
    for name in ("label", "decision", "chunk_sha256", "input_sha256"):
        assert np.array_equal(resumed[name][:], clean[name][:]), name
    # resuming with another head, or another input of the same shape, is refused
    RidgeHead().fit(feats, np.arange(160) % 2, model=params).save(tmp_path / "h2.npz")
    PredictionStore.open(out, mode="r+").reset([3])
    code = main([*argv[:4], "--head", str(tmp_path / "h2.npz"), "--no-progress", "--output", str(out),
                 "--resume"])
    assert code == 2 and "were made with a ridge head" in capsys.readouterr().err
    write_zarr(tmp_path / "y.zarr", make_data(160, 2, 80, seed=9), 20)
    PredictionStore.open(out, mode="r+").reset([3])
    code = main([*argv[:1], str(tmp_path / "y.zarr"), *argv[2:], "--output", str(out), "--resume"])
    assert code == 2 and "resume needs the same input" in capsys.readouterr().err
