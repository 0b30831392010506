"""Streaming (issue 14): ``--append`` grows a features / predictions store with its input, ``--follow``
keeps transforming (scoring) an input while a writer process grows or fills it. Every result is compared
bit for bit with a one-shot run over the final input; the writers and followers are real processes,
crashes are real SIGKILLs, and nothing asserts on time (latencies are measured and printed)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aeon
import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.features import features_info, open_features
from rocketstream.api.follow import LandedRows, follow_transform
from rocketstream.api.predict import labels_array, load_predictions
from rocketstream.cli.main import main
from rocketstream.core import fit, save, transform
from rocketstream.errors import InputError, StoreError
from rocketstream.heads import RidgeHead
from rocketstream.storage import FeatureStore
from rocketstream.storage.zarrstore import CheckedArray

HELPERS = Path(__file__).parent / "helpers"
GUNPOINT = Path(aeon.__file__).parent / "datasets" / "data" / "GunPoint"
COORDS = ("label", "length", "sample")
CLI = [sys.executable, "-m", "rocketstream.cli"]
DEADLINE = 180  # seconds before a stuck wait gives up (a hang guard, not a timed assertion)


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def gunpoint(tmp_path_factory):
    """GunPoint through ``rocketstream ingest``: the train store (50 series) to grow, all 200 series'
    arrays (train then test) to grow it with, and a model fitted on train."""
    root = tmp_path_factory.mktemp("gunpoint")
    for split in ("TRAIN", "TEST"):
        assert main(["ingest", str(GUNPOINT / f"GunPoint_{split}.ts"), str(root / f"{split}.zarr")]) == 0
    parts = [zarr.open_group(root / f"{s}.zarr", mode="r", use_consolidated=False) for s in ("TRAIN", "TEST")]
    rows = {name: np.concatenate([labels_array(g[name][:]) for g in parts]) for name in ("X", *COORDS)}
    rows["sample"] = np.arange(len(rows["X"]), dtype=np.int64)
    np.savez(root / "all.npz", **rows)
    params = fit(rows["X"][:50], num_features=336, random_state=0)
    save(params, root / "m.json")
    return root, rows, params


def _grow(group: zarr.Group, rows: dict[str, np.ndarray], stop: int) -> None:
    """Append rows up to ``stop`` to every per-sample array of the group (coordinates, then X)."""
    n = group["X"].shape[0]
    for name in sorted(k for k in rows if k != "X"):
        group[name].append(rows[name][n:stop])
    group["X"].append(rows["X"][n:stop])


def _snapshot(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _assert_same_store(a: Path, b: Path) -> None:
    """Two features stores hold the same features, coordinates and digests, bit for bit."""
    ga = zarr.open_group(a, mode="r", use_consolidated=False)
    gb = zarr.open_group(b, mode="r", use_consolidated=False)
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for name in ga.array_keys():
        va, vb = labels_array(ga[name][...]), labels_array(gb[name][...])
        assert va.dtype == vb.dtype and va.shape == vb.shape, name
        assert va.tobytes() == vb.tobytes(), name


def _wait(cond, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.stdout.read()}")
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.05)


def _rows_done(out: Path) -> int:
    try:
        store = FeatureStore.open(out)
    except (FileNotFoundError, ValueError):
        return 0
    return sum(store.bounds(k)[1] - store.bounds(k)[0] for k in np.flatnonzero(store.done()).tolist())


def _latencies(writer_log: Path, audit_log: Path) -> list[float]:
    """Per writer step: seconds from the step written to the first chunk write covering its last row."""
    writes = [json.loads(line) for line in audit_log.read_text().splitlines()]
    writes = [w for w in writes if w["event"] == "write"]
    out = []
    for step in (json.loads(line) for line in writer_log.read_text().splitlines()):
        after = [w["time"] for w in writes
                 if w["time"] >= step["time"] and w["start"] + w["rows"] >= step["n"]]
        if after:
            out.append(min(after) - step["time"])
    return out


# ------------------------------------------------------------------------------------------ append
def test_append_three_times_equals_one_shot(gunpoint, tmp_path):
    root, rows, _ = gunpoint
    src = tmp_path / "in.zarr"
    shutil.copytree(root / "TRAIN.zarr", src)
    group = zarr.open_group(src, mode="r+", use_consolidated=False)
    model, out = str(root / "m.json"), tmp_path / "f.zarr"
    base = ["transform", str(src), "--model", model, "--output", str(out), "--no-progress"]
    assert main([*base, "--chunk-size", "16"]) == 0  # 50 rows: the last chunk is partly filled
    for stop in (87, 128, 200):  # sizes 37, 41, 72: never multiples of 16
        _grow(group, rows, stop)
        assert main([*base, "--append"]) == 0
    assert main(["transform", str(src), "--model", model, "--output", str(tmp_path / "one.zarr"),
                 "--chunk-size", "16", "--no-progress"]) == 0
    _assert_same_store(out, tmp_path / "one.zarr")  # features, coordinates, markers and digests
    feats = open_features(out)
    assert feats.shape == (200, 336) and (feats.label.values == rows["label"]).all()
    assert feats.values.tobytes() == transform(rows["X"], fit(rows["X"][:50], num_features=336,
                                                              random_state=0)).cpu().numpy().tobytes()
    info = features_info(out)
    assert info["complete"] and [h["added"] for h in info["history"]] == [50, 37, 41, 72]
    assert [h["n_samples"] for h in info["history"]] == [50, 87, 128, 200]
    import xarray as xr

    with xr.open_zarr(out) as ds:  # the consolidated metadata was rewritten after each growth
        assert ds.sizes["sample"] == 200 and ds["label"].size == 200


def test_append_refuses_changed_old_rows_and_writes_nothing(tmp_path, capsys):
    x = make_data(60, 2, 50, seed=5)
    params = fit(x, num_features=336, random_state=1)
    save(params, tmp_path / "m.json")
    src = write_zarr(tmp_path / "in.zarr", x[:30], 10, group_var="X")
    group = zarr.open_group(src, mode="r+", use_consolidated=False)
    out = tmp_path / "f.zarr"
    base = ["transform", src, "--model", str(tmp_path / "m.json"), "--output", str(out), "--no-progress"]
    assert main([*base, "--chunk-size", "8"]) == 0  # chunks 0-7 ... 24-29 (partly filled)
    group["label"].append(np.arange(30, 45) % 3)
    group["X"].append(x[30:45])
    before = _snapshot(out)
    for row, chunk, flags in ((26, 3, ["--no-verify"]), (5, 0, [])):  # the partly filled chunk, a full one
        original = group["X"][row]
        group["X"][row] = original + 1
        capsys.readouterr()
        assert main([*base, "--append", *flags]) == 2
        err = capsys.readouterr().err
        assert f"(chunk {chunk})" in err and "append needs the same input data" in err, err
        assert _snapshot(out) == before  # refused before anything was written
        group["X"][row] = original
    group["label"][3] = 2  # a per-sample coordinate of an old row
    assert main([*base, "--append"]) == 2
    assert "'label' of sample 3" in capsys.readouterr().err and _snapshot(out) == before
    group["label"][3] = 0
    assert main([*base, "--append"]) == 0
    store = FeatureStore.open(out)
    assert store.is_complete() and store.n_samples == 45
    assert store.features[:].tobytes() == transform(x[:45], params).cpu().numpy().tobytes()


@pytest.mark.parametrize("kill_at", [1, 4])  # SIGKILL at the first / fourth array resize of the growth
def test_growth_killed_midway_is_refused_then_finished(tmp_path, capsys, kill_at):
    x = make_data(40, 1, 40, seed=8)
    params = fit(x, num_features=84, random_state=2)
    save(params, tmp_path / "m.json")
    src = write_zarr(tmp_path / "in.zarr", x[:17], 10, group_var="X")
    out = tmp_path / "f.zarr"
    base = ["transform", src, "--model", str(tmp_path / "m.json"), "--output", str(out), "--no-progress"]
    assert main([*base, "--chunk-size", "5"]) == 0
    group = zarr.open_group(src, mode="r+", use_consolidated=False)
    group["label"].append(np.arange(17, 40) % 3)
    group["X"].append(x[17:])
    proc = subprocess.run([sys.executable, str(HELPERS / "kill_during_grow.py"), src,
                           str(tmp_path / "m.json"), str(out), str(kill_at)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with pytest.raises(StoreError, match="interrupted.*--append"):
        open_features(out)  # never looks complete
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2 and "--append" in capsys.readouterr().err
    info = features_info(out)
    assert not info["complete"] and "interrupted while growing from 17 to 40" in info["growth"]
    assert main([*base, "--append"]) == 0
    store = FeatureStore.open(out)
    assert store.is_complete() and [h["n_samples"] for h in store.history] == [17, 40]
    assert store.features[:].tobytes() == transform(x, params).cpu().numpy().tobytes()
    assert (store.read_coords(["label"])["label"] == np.arange(40) % 3).all()


def test_predict_append_equals_one_shot(tmp_path):
    x = make_data(70, 2, 60, seed=11)
    y = (np.arange(70) % 3).astype(np.int64)
    params = fit(x[:40], num_features=336, random_state=3)
    head = RidgeHead().fit(transform(x[:40], params).cpu().numpy(), y[:40], model=params)
    save(params, tmp_path / "m.json")
    head.save(tmp_path / "h.npz")
    src = write_zarr(tmp_path / "in.zarr", x[:26], 10, group_var="X")
    group = zarr.open_group(src, mode="r+", use_consolidated=False)
    base = ["predict", src, "--model", str(tmp_path / "m.json"), "--head", str(tmp_path / "h.npz"),
            "--no-progress"]
    assert main([*base, "--output", str(tmp_path / "p.zarr"), "--chunk-size", "12"]) == 0
    for stop in (45, 70):
        group["label"].append(np.arange(group["X"].shape[0], stop) % 3)
        group["X"].append(x[group["X"].shape[0] : stop])
        assert main([*base, "--output", str(tmp_path / "p.zarr"), "--append"]) == 0
    assert main([*base, "--output", str(tmp_path / "one.zarr"), "--chunk-size", "12"]) == 0
    grown, one = load_predictions(tmp_path / "p.zarr"), load_predictions(tmp_path / "one.zarr")
    for name in ("label", "decision", "input_label"):
        assert grown[name].values.tobytes() == one[name].values.tobytes(), name
    assert grown.attrs["rocketstream"]["complete"] and len(grown.attrs["rocketstream"]["history"]) == 3


# ------------------------------------------------------------------------------------------ follow
def test_landed_rows_rule(tmp_path):
    """Absent, undecodable and stale (resized, not yet rewritten) input chunks are not landed."""
    x = make_data(12, 1, 20, seed=1)
    arr = zarr.create_array(tmp_path / "a.zarr", shape=(12, 1, 20), chunks=(4, 1, 20), dtype="float32",
                            fill_value=np.nan)
    arr[:6] = x[:6]  # chunk 0 whole, chunk 1 rows 4-5; chunk 2 absent
    reader = LandedRows(CheckedArray(zarr.open_array(tmp_path / "a.zarr", mode="r"), "a"))
    assert reader(0, 4).tobytes() == x[:4].tobytes()
    assert reader(8, 12) is None  # absent: not written yet
    assert reader(4, 8) is None  # rows 6-7 read as the fill value: written before the resize
    torn = tmp_path / "a.zarr" / "c" / "2" / "0" / "0"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"\x00garbage")  # a chunk caught mid-write
    assert reader(8, 12) is None
    arr[4:] = x[4:]
    assert reader(4, 12).tobytes() == x[4:].tobytes()


def test_follow_fixed_size_input_filled_out_of_order(tmp_path):
    """Without --append: a pre-sized input whose chunks are written in any order; absent chunks are
    waited for, and the follower stops once every chunk is done."""
    x = make_data(40, 2, 40, seed=4)
    params = fit(x, num_features=168, random_state=5)
    np.save(tmp_path / "x.npy", x)
    group = zarr.open_group(tmp_path / "in.zarr", mode="w")
    group.create_array("X", shape=x.shape, chunks=(8, 2, 40), dtype="float32", fill_value=np.nan,
                       dimension_names=("sample", "channel", "time"))
    script = ("import sys, time, numpy as np, zarr\n"
              "x = np.load(sys.argv[2]); a = zarr.open_group(sys.argv[1], mode='r+')['X']\n"
              "for i in (3, 0, 4, 1, 2):\n"
              "    time.sleep(0.15); a[8 * i : 8 * i + 8] = x[8 * i : 8 * i + 8]\n")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "in.zarr"),
                               str(tmp_path / "x.npy")])
    try:
        report = follow_transform(tmp_path / "in.zarr", params, tmp_path / "f.zarr", variable="X",
                                  chunk_size=6, poll=0.05, handle_signals=False, scheduler="threads")
    finally:
        writer.wait(timeout=60)
    assert report.reason == "complete" and report.rows_done == 40
    feats = FeatureStore.open(tmp_path / "f.zarr").features[:]
    assert feats.tobytes() == transform(x, params).cpu().numpy().tobytes()


def test_follow_stops_on_a_chunk_that_never_lands(tmp_path):
    x = make_data(16, 1, 30, seed=2)
    params = fit(x, num_features=84, random_state=0)
    x[7] = np.nan  # the last series of input chunk 0 is all fill value: read as "not rewritten yet"
    arr = zarr.create_array(tmp_path / "nan.zarr", shape=x.shape, chunks=(8, 1, 30), dtype="float32",
                            fill_value=np.nan)
    arr[:] = x
    with pytest.raises(InputError, match=r"samples 0-7 \(chunk 0\).*not become readable in 2 polls"):
        follow_transform(tmp_path / "nan.zarr", params, tmp_path / "f.zarr", chunk_size=8, poll=0.02,
                         patience=2, handle_signals=False)
    store = FeatureStore.open(tmp_path / "f.zarr")  # the chunk that landed is kept
    assert store.done().tolist() == [False, True]


def test_follow_stops_on_a_coordinate_chunk_that_never_decodes(tmp_path):
    # a stored chunk of the label coordinate that is garbage: its rows can never land, so after
    # ``patience`` polls the follower stops naming it (it used to wait for them for ever)
    import threading

    x = make_data(16, 1, 30, seed=3)
    params = fit(x, num_features=84, random_state=0)
    group = zarr.open_group(tmp_path / "in.zarr", mode="w")
    group.create_array("X", shape=x.shape, chunks=(8, 1, 30), dtype="float32",
                       dimension_names=("sample", "channel", "time"))[:] = x
    group.create_array("label", shape=(16,), chunks=(8,), dtype="int64", dimension_names=("sample",))[:] = \
        np.arange(16) % 2
    (tmp_path / "in.zarr" / "label" / "c" / "1").write_bytes(b"not zstd at all")
    stop = threading.Event()
    guard = threading.Timer(60, stop.set)  # the old behaviour: no error, stopped only by this guard
    guard.start()
    try:
        with pytest.raises(InputError, match=r"samples 8-15 of the per-sample coordinate 'label' of the "
                           r"input \S+in\.zarr are stored but have not become readable in 2 polls \(.*\); "
                           r"the input is damaged: restore that chunk"):
            follow_transform(tmp_path / "in.zarr", params, tmp_path / "f.zarr", variable="X", chunk_size=8,
                             poll=0.02, patience=2, stop=stop, handle_signals=False)
    finally:
        guard.cancel()
    assert FeatureStore.open(tmp_path / "f.zarr").done().tolist() == [True, False]


def test_follow_gunpoint_sigkill_and_restart_equals_one_shot(gunpoint, tmp_path):
    """A writer process grows GunPoint from 50 to 200 series in 7 appends; the follower is killed
    (SIGKILL) midway and started again; the store equals a one-shot transform."""
    root, rows, params = gunpoint
    src, out = tmp_path / "in.zarr", tmp_path / "f.zarr"
    shutil.copytree(root / "TRAIN.zarr", src)
    gate = tmp_path / "gate"
    gate.touch()
    writer = subprocess.Popen([sys.executable, str(HELPERS / "append_writer.py"), str(src),
                               str(root / "all.npz"), "13,21,8,30,17,26,35", "0.1",
                               str(tmp_path / "writer.log"), "3", str(gate)])
    cmd = [*CLI, "transform", str(src), "--model", str(root / "m.json"), "--output", str(out), "--append",
           "--follow", "--until", "200", "--poll", "0.1", "--chunk-size", "16", "--no-progress"]
    env = {**os.environ, "ROCKETSTREAM_AUDIT_LOG": str(tmp_path / "audit.log")}
    try:
        follower = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        _wait(lambda: _rows_done(out) >= 50 + 13 + 21, follower)  # mid-stream: the writer holds at 92
        follower.kill()
        follower.wait(timeout=30)
        assert follower.returncode == -signal.SIGKILL
        gate.unlink()
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=DEADLINE)
    finally:
        writer.wait(timeout=DEADLINE)
    assert again.returncode == 0, again.stderr
    assert "stopped (until): 200 of 200 rows done" in again.stdout
    store = FeatureStore.open(out)
    assert store.is_complete() and store.n_samples == 200
    assert store.features[:].tobytes() == transform(rows["X"], params).cpu().numpy().tobytes()
    coords = store.read_coords(list(COORDS))
    for name in COORDS:
        assert coords[name].tobytes() == rows[name].tobytes(), name
    lat = _latencies(tmp_path / "writer.log", tmp_path / "audit.log")
    print(f"follow latency per append (s): {np.round(lat, 3).tolist()}; {again.stdout.strip()}")


def test_follow_sigterm_exits_cleanly_and_predict_follow_scores_new_series(tmp_path):
    """predict --follow scores the series a writer appends; SIGTERM stops it with exit 0 and a line
    saying how many rows are done; the predictions equal a one-shot predict."""
    x = make_data(90, 2, 60, seed=13)
    y = (np.arange(90) % 3).astype(np.int64)
    params = fit(x[:40], num_features=336, random_state=3)
    head = RidgeHead().fit(transform(x[:40], params).cpu().numpy(), y[:40], model=params)
    save(params, tmp_path / "m.json")
    head.save(tmp_path / "h.npz")
    src = write_zarr(tmp_path / "in.zarr", x[:20], 16, group_var="X")
    np.savez(tmp_path / "all.npz", X=x, label=y)
    cmd = [*CLI, "predict", src, "--model", str(tmp_path / "m.json"), "--head", str(tmp_path / "h.npz"),
           "--output", str(tmp_path / "p.zarr"), "--append", "--follow", "--poll", "0.1",
           "--chunk-size", "10"]
    env = {**os.environ, "ROCKETSTREAM_AUDIT_LOG": str(tmp_path / "audit.log")}
    follower = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait(lambda: (tmp_path / "audit.log").exists(), follower)  # following: the writer starts now
        writer = subprocess.run([sys.executable, str(HELPERS / "append_writer.py"), src,
                                 str(tmp_path / "all.npz"), "11,25,7,27", "0.3",
                                 str(tmp_path / "writer.log")], timeout=DEADLINE)
        assert writer.returncode == 0

        def complete() -> bool:
            try:
                meta = dict(zarr.open_group(tmp_path / "p.zarr", mode="r", use_consolidated=False).attrs)
            except (FileNotFoundError, ValueError):
                return False
            return meta["rocketstream"]["n_samples"] == 90 and bool(meta["rocketstream"].get("complete"))

        _wait(complete, follower)
        follower.send_signal(signal.SIGTERM)
        stdout, stderr = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert "predict --follow stopped (SIGTERM): 90 of 90 rows done" in stdout
    assert subprocess.run([*CLI, "predict", src, "--model", str(tmp_path / "m.json"), "--head",
                           str(tmp_path / "h.npz"), "--output", str(tmp_path / "one.zarr"), "--no-progress",
                           "--chunk-size", "10"], capture_output=True).returncode == 0  # the head's float64
    # matrix products are exact per chunk layout, so the one-shot run uses the same chunks
    grown, one = load_predictions(tmp_path / "p.zarr"), load_predictions(tmp_path / "one.zarr")
    for name in ("label", "decision", "input_label"):
        assert grown[name].values.tobytes() == one[name].values.tobytes(), name
    lat = _latencies(tmp_path / "writer.log", tmp_path / "audit.log")
    print(f"predict --follow latency per append (s): {np.round(lat, 3).tolist()}; {stdout.strip()}")


def test_follow_refuses_an_input_whose_chunks_split_a_series(tmp_path):
    """The landed rules judge a stored chunk by its last series; chunks that cut a series along time (or
    channel) could pass that test half-written, so following such an input is refused up front."""
    x = make_data(16, 2, 30, seed=2)
    params = fit(x, num_features=84, random_state=0)
    arr = zarr.create_array(tmp_path / "split.zarr", shape=x.shape, chunks=(8, 2, 10), dtype="float32",
                            fill_value=np.nan)
    arr[:] = x
    with pytest.raises(InputError, match=r"chunks of \(8, 2, 10\), which split each series.*--follow needs "
                                         r"whole series"):
        follow_transform(tmp_path / "split.zarr", params, tmp_path / "f.zarr", chunk_size=8, poll=0.02,
                         handle_signals=False)
    assert not (tmp_path / "f.zarr").exists()
