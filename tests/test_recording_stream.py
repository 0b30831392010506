"""Growing recordings (issue 14): the complete windows of a (channel, time) Zarr recording that grows
along time, their features appended as they land (rocketstream.ingest.recording), and the live_stream
workflow. Every result is compared bit for bit with a one-shot run over the final recording; crashes are
real SIGKILLs, the workflow a real subprocess; nothing asserts on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from rocketstream.api.features import open_features
from rocketstream.api.transform import run_transform
from rocketstream.core import fit, save
from rocketstream.errors import IdentityMismatchError, InputError
from rocketstream.ingest.recording import (
    append_recording,
    follow_recording,
    landed_time,
    open_recording,
    recording_windows,
)
from rocketstream.ingest.windows import labels_from_intervals, window_starts

HELPERS = Path(__file__).parent / "helpers"
ROOT = Path(__file__).parent.parent
LENGTH, STRIDE, CHUNK, TCHUNK = 300, 130, 8, 700
TABLE = {"start": np.array([0, 1500, 4200, 7000, 8800]), "end": np.array([1500, 4200, 7000, 8800, 10_000]),
         "label": np.array(["rest", "walk", "rest", "run", "walk"])}


@pytest.fixture(scope="module")
def full():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 10_000)).astype(np.float32)


@pytest.fixture(scope="module")
def params(full):
    return fit(np.stack([full[:, i : i + LENGTH] for i in range(0, 3000, 100)]), num_features=336,
               random_state=0)


def _create(path: Path, fill: float = np.nan) -> zarr.Group:
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    g.create_array("signal", shape=(3, 0), chunks=(3, TCHUNK), dtype="float32", fill_value=fill,
                   dimension_names=("channel", "time"))
    for col in ("start", "end", "label"):
        text = TABLE[col].dtype.kind == "U"
        g.create_array(f"interval_{col}", shape=(0,), chunks=(2,), dtype=str if text else "int64",
                       fill_value="" if text else -1)
    return g


def _grow(g: zarr.Group, full: np.ndarray, stop: int) -> None:
    """The recording to ``stop`` points, then the intervals ended by then (a labeller's order)."""
    g["signal"].append(full[:, g["signal"].shape[1] : stop], axis=1)
    have, new = g["interval_start"].shape[0], int(np.searchsorted(TABLE["end"], stop, side="right"))
    for col in ("start", "end", "label"):
        g[f"interval_{col}"].append(TABLE[col][have:new])


def _expected(stop: int) -> int:
    """Windows complete in ``stop`` points whose end is at or before the last ended interval's end."""
    ended = TABLE["end"][TABLE["end"] <= stop]
    bound = int(ended.max()) if len(ended) else 0
    return len(window_starts(bound, LENGTH, STRIDE)) if bound >= LENGTH else 0


def _same(a, b) -> None:
    assert a.shape == b.shape
    assert np.array_equal(a.values, b.values)
    for name in ("sample", "start", "label"):
        assert np.array_equal(np.asarray(a[name].values).astype(str), np.asarray(b[name].values).astype(str))


def test_grown_in_three_steps_equals_one_shot(tmp_path, full, params):
    g = _create(tmp_path / "rec.zarr")
    rec, out = tmp_path / "rec.zarr", tmp_path / "f.zarr"
    counts = []
    for stop in (2345, 6001, 10_000):  # neither multiples of the stride nor of the chunk
        _grow(g, full, stop)
        if stop == 10_000:  # an old window's label changed: refused, nothing written; restored: appended
            g["interval_label"][0] = "run"
            with pytest.raises(IdentityMismatchError, match="'label' of sample 0"):
                append_recording(rec, params, out, LENGTH, STRIDE, variable="signal", intervals="interval_",
                                 chunk_size=CHUNK)
            assert open_features(out).sizes["sample"] == counts[-1]
            g["interval_label"][0] = "rest"
        n, t = append_recording(rec, params, out, LENGTH, STRIDE, variable="signal", intervals="interval_",
                                chunk_size=CHUNK, scheduler="synchronous")
        assert t == stop and n == _expected(stop)
        counts.append(n)
    assert counts == [_expected(s) for s in (2345, 6001, 10_000)] and counts[0] < counts[1] < counts[2]
    x = recording_windows(rec, LENGTH, STRIDE, variable="signal", intervals="interval_")
    starts = window_starts(10_000, LENGTH, STRIDE)
    assert np.array_equal(x["start"].values, starts)
    assert np.array_equal(x["label"].values, labels_from_intervals(starts, LENGTH, TABLE))
    assert np.array_equal(x.values[5], full[:, starts[5] : starts[5] + LENGTH])
    run_transform(x, params, tmp_path / "one.zarr", chunk_size=CHUNK, scheduler="synchronous")
    _same(open_features(out), open_features(tmp_path / "one.zarr"))


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_absent_or_stale_chunk_bounds_the_windows(tmp_path, full, fill):
    g = zarr.open_group(str(tmp_path / "rec.zarr"), mode="w", zarr_format=3)
    sig = g.create_array("signal", shape=(3, 5000), chunks=(3, TCHUNK), dtype="float32", fill_value=fill)
    for k in (0, 1, 2, 4, 5, 6, 7):  # chunk 3 (points 2100-2799) not written yet
        sig[:, k * TCHUNK : (k + 1) * TCHUNK] = full[:, k * TCHUNK : (k + 1) * TCHUNK]
    checked = open_recording(tmp_path / "rec.zarr", "signal")
    assert landed_time(checked) == 3 * TCHUNK
    x = recording_windows(tmp_path / "rec.zarr", LENGTH, STRIDE)
    assert int(x["start"].values[-1]) + LENGTH <= 3 * TCHUNK and x.sizes["sample"] == 14
    assert np.array_equal(x.values, np.stack([full[:, s : s + LENGTH] for s in x["start"].values]))
    sig[:, 3 * TCHUNK : 4 * TCHUNK] = full[:, 3 * TCHUNK : 4 * TCHUNK]
    assert landed_time(open_recording(tmp_path / "rec.zarr", "signal")) == 5000
    # a chunk written while partly filled, then the array resized before it is rewritten
    sig.resize((3, 5200))
    sig[:, 4900:5000] = full[:, 4900:5000]  # the old last chunk, written partly
    sig.resize((3, 5500))
    assert landed_time(open_recording(tmp_path / "rec.zarr", "signal"), since=4000) == 5000
    assert recording_windows(tmp_path / "rec.zarr", LENGTH, STRIDE).sizes["sample"] == \
        len(window_starts(5000, LENGTH, STRIDE))


def test_killed_append_finished_by_follow(tmp_path, full, params):
    g = _create(tmp_path / "rec.zarr")
    rec, out = tmp_path / "rec.zarr", tmp_path / "f.zarr"
    save(params, tmp_path / "m.json")
    _grow(g, full, 4321)
    append_recording(rec, params, out, LENGTH, STRIDE, variable="signal", intervals="interval_",
                     chunk_size=CHUNK)
    _grow(g, full, 10_000)
    cmd = [sys.executable, str(HELPERS / "kill_recording_append.py"), str(rec), str(tmp_path / "m.json"),
           str(out), str(LENGTH), str(STRIDE), str(CHUNK), "2"]
    assert subprocess.run(cmd, timeout=300).returncode == -9
    total = len(window_starts(10_000, LENGTH, STRIDE))
    report = follow_recording(rec, params, out, LENGTH, STRIDE, until=total, poll=0.05, variable="signal",
                              intervals="interval_", chunk_size=CHUNK, handle_signals=False)
    assert report.reason == "until" and report.windows == total
    x = recording_windows(rec, LENGTH, STRIDE, variable="signal", intervals="interval_")
    run_transform(x, params, tmp_path / "one.zarr", chunk_size=CHUNK)
    _same(open_features(out), open_features(tmp_path / "one.zarr"))


def test_live_stream_workflow_quick(tmp_path):
    cmd = [sys.executable, str(ROOT / "workflows" / "live_stream" / "run.py"), "--quick", "--workdir",
           str(tmp_path), "--json", str(tmp_path / "r.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["predicted"] == result["windows"] == result["features"] > result["live_windows"] > 0
    assert result["exit_codes"] == [0, 0]
    print(proc.stdout)  # throughput and latency, for the log


def test_follow_until_keeps_an_existing_stores_chunk_size(tmp_path, full, params):
    """--until below the chunk size lowers the chunk size only of a store it makes; an existing store
    keeps its own (an append with another chunk size would be refused)."""
    from rocketstream.storage import FeatureStore

    g = _create(tmp_path / "rec.zarr")
    rec, out = tmp_path / "rec.zarr", tmp_path / "f.zarr"
    _grow(g, full, 2345)
    n, _ = append_recording(rec, params, out, LENGTH, STRIDE, variable="signal", intervals="interval_",
                            chunk_size=CHUNK, scheduler="synchronous")
    _grow(g, full, 10_000)
    report = follow_recording(rec, params, out, LENGTH, STRIDE, until=CHUNK - 3, variable="signal",
                              intervals="interval_", chunk_size=CHUNK, scheduler="synchronous",
                              handle_signals=False, poll=0.05)
    store = FeatureStore.open(out)
    assert n >= CHUNK and report.windows >= n and store.chunk_size == CHUNK


def test_recording_split_across_channels_is_refused(tmp_path, full):
    g = zarr.open_group(str(tmp_path / "rec.zarr"), mode="w", zarr_format=3)
    g.create_array("signal", data=full[:, :2000], chunks=(1, TCHUNK), dimension_names=("channel", "time"))
    with pytest.raises(InputError, match=r"split its 3 channels"):
        landed_time(open_recording(tmp_path / "rec.zarr", "signal"))
