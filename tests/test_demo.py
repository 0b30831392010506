"""``rocketstream demo``, the main job, end to end on a small setting (real stores, real LocalCluster)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from rocketstream.cli import main
from rocketstream.cli.demo import fresh_run_dir, synthetic_chunk


def test_demo_small_end_to_end(tmp_path, capsys):
    argv = ["demo", "--n-samples", "300", "--length", "200", "--chunk-size", "30", "--workdir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "run-001" / "report.json").read_text())
    printed = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert printed == pytest.approx(report["test_accuracy"], abs=1e-4)
    assert report["test_accuracy"] >= 0.7  # 4 classes: chance is 0.25
    assert report["n_train"] == 210 and report["n_test"] == 90 and report["num_features"] == 9996
    assert report["fit_rows_read"] <= 210
    assert report["transform_series_per_s"] > 0 and set(report["seconds"]) >= {"fit", "transform", "train",
                                                                               "predict", "evaluate"}
    assert np.sum(report["confusion_matrix"]) == 90
    for stage in ("data", "cluster", "fit", "transform", "train", "predict", "evaluate"):
        assert re.search(rf"^  {stage} +[0-9.]+ s", out, re.M), stage
    assert "series/s" in out and "LocalCluster, 2 worker processes" in out
    info = report["paths"]
    assert main(["info", info["features"], "--json"]) == 0
    feats = json.loads(capsys.readouterr().out)
    assert feats["complete"] and feats["chunks_done"] == "7/7"  # 210 rows in chunks of 30


def test_fresh_run_dirs_never_clobber(tmp_path):
    (tmp_path / "run-001").mkdir()
    (tmp_path / "run-001" / "keep").write_text("x")
    assert fresh_run_dir(tmp_path).name == "run-002"
    assert fresh_run_dir(tmp_path).name == "run-003"
    assert (tmp_path / "run-001" / "keep").read_text() == "x"


def test_synthetic_data_is_chunkwise_deterministic():
    a, ya = synthetic_chunk(20, 3, 100, seed=1, stream=0, index=2)
    b, yb = synthetic_chunk(20, 3, 100, seed=1, stream=0, index=2)
    c, _ = synthetic_chunk(20, 3, 100, seed=1, stream=0, index=3)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and set(ya) <= {"sine", "square", "slow-sine", "sawtooth"}


def test_demo_bad_settings_exit_2(tmp_path, capsys):
    assert main(["demo", "--n-samples", "5", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "too small" in err
    (tmp_path / "file").write_text("x")
    assert main(["demo", "--workdir", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
