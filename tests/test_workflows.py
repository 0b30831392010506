"""Smoke tests of the runnable pipelines in workflows/ on tiny settings (real stores, no downloads)."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "workflows"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"workflow_{name}", ROOT / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["ucr_accuracy", "long_recording", "dask_cluster"])
def test_each_workflow_has_a_readme(name):
    text = (ROOT / name / "README.md").read_text()
    assert f"python workflows/{name}/run.py" in text


def test_ucr_accuracy_quick(tmp_path, capsys):
    rows = _load("ucr_accuracy").main(["--quick", "--ingest", "--workdir", str(tmp_path),
                                       "--json", str(tmp_path / "r.json")])
    assert [r["dataset"] for r in rows] == ["ItalyPowerDemand"]
    # published MiniRocket: 0.9596 (mean of 30 resamples), 0.9689 (default split); aeon 0.965
    assert rows[0]["accuracy"] >= 0.95
    assert rows[0]["n_train"] == 67 and rows[0]["n_test"] == 1029
    out = capsys.readouterr().out
    assert "| ItalyPowerDemand | 67 | 1029 | 1 x 24 |" in out and "0.9596" in out
    assert json.loads((tmp_path / "r.json").read_text())[0]["published_mean30"] == 0.9596
    assert (tmp_path / "ItalyPowerDemand" / "predictions.zarr").is_dir()


def test_long_recording_quick(tmp_path, capsys):
    result = _load("long_recording").main(["--quick", "--workdir", str(tmp_path)])
    assert result["n_train"] > 100 and result["n_test"] > 50
    assert result["accuracy"] >= 0.8  # four activities: chance is about 0.25
    assert (tmp_path / "recording.zarr" / "signal").is_dir()
    assert "windows/s" in capsys.readouterr().out


def test_dask_cluster_with_scheduler_address(tmp_path, capsys):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        result = _load("dask_cluster").main(["--scheduler", address, "--quick", "--workdir", str(tmp_path)])
    assert result["scheduler"] == address and not result["started_local_cluster"]
    assert result["n_train"] == 168 and result["n_test"] == 72
    assert result["accuracy"] >= 0.6  # four classes: chance is 0.25
    out = capsys.readouterr().out
    assert f"cluster {address}: 1 workers, 2 threads" in out and "no --scheduler" not in out
