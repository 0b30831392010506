"""The train / predict / evaluate commands: help, end to end on real stores, and one-line exit-2 errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers.data import write_zarr

from rocketstream.api.outofcore import transform_to_zarr
from rocketstream.api.predict import labels_array
from rocketstream.cli import main
from rocketstream.cli.demo import synthetic_chunk
from rocketstream.core import fit, load, transform
from rocketstream.heads import RidgeHead


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """data.zarr (X, label), model.json and features.zarr made through the CLI."""
    root = tmp_path_factory.mktemp("cli_heads")
    x, y = synthetic_chunk(160, 2, 80, seed=4, stream=0, index=0, n_classes=3)
    src = write_zarr(root / "data.zarr", x, 40, group_var="X")
    np.save(root / "y.npy", y)
    assert main(["fit", src, "--variable", "X", "--model", str(root / "m.json"), "--seed", "2",
                 "--num-features", "420", "--max-dilations", "8"]) == 0
    assert main(["transform", src, "--variable", "X", "--model", str(root / "m.json"),
                 "--output", str(root / "f.zarr"), "--scheduler", "synchronous"]) == 0
    return x, y, src, root


def test_train_predict_evaluate_end_to_end(pipeline, tmp_path, capsys):
    x, y, src, root = pipeline
    head, pred = tmp_path / "head.npz", tmp_path / "pred.zarr"
    assert main(["train", str(root / "f.zarr"), "--labels", str(root / "y.npy"), "--head", "ridge",
                 "--output", str(head)]) == 0
    assert "trained a ridge classification head on 160 x 420" in capsys.readouterr().out
    assert main(["predict", src, "--variable", "X", "--model", str(root / "m.json"), "--head", str(head),
                 "--output", str(pred), "--scheduler", "threads", "--chunk-size", "64"]) == 0
    assert "predicted 160 series (3 classes, ridge head)" in capsys.readouterr().out
    # the same as the in-memory path: core transform + RidgeHead
    feats = transform(x, load(root / "m.json")).cpu().numpy()
    expected = RidgeHead().fit(feats, y).predict(feats)
    got = labels_array(xr.open_zarr(pred, consolidated=False)["label"])
    np.testing.assert_array_equal(got, expected)
    assert main(["evaluate", str(pred), "--labels", str(root / "y.npy"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] == pytest.approx(float((expected == y).mean()))
    row_sums = np.sum(metrics["confusion_matrix"], axis=1)
    assert np.array_equal(row_sums, [np.sum(y == c) for c in metrics["classes"]])
    assert main(["evaluate", str(pred), "--labels", str(root / "y.npy")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accuracy = ") and "confusion matrix" in out


def test_softmax_and_own_label_coordinate(pipeline, tmp_path, capsys):
    x, y, _, root = pipeline
    params = load(root / "m.json")
    da_x = xr.DataArray(x, dims=("sample", "channel", "time"), coords={"label": ("sample", y)})
    transform_to_zarr(da_x, params, tmp_path / "f.zarr", scheduler="synchronous")
    argv = ["train", str(tmp_path / "f.zarr"), "--head", "softmax", "--output", str(tmp_path / "s"),
            "--epochs", "2", "--lr", "1e-3", "--validation-fraction", "0.2"]
    assert main(argv) == 0  # labels: the store's own 'label' coordinate
    out = capsys.readouterr().out
    assert "softmax classification head" in out and "2 epochs" in out
    ckpt = tmp_path / "s_checkpoint"
    assert (tmp_path / "s.npz").exists() and (ckpt / "metrics.json").exists()
    resume = argv[:-6] + ["--epochs", "3", "--lr", "1e-3", "--validation-fraction", "0.2", "--resume"]
    assert main(resume) == 0
    assert json.loads((ckpt / "metrics.json").read_text())["epochs_run"] == 3
    assert main(["predict", str(root / "data.zarr"), "--variable", "X", "--model", str(root / "m.json"),
                 "--head", str(tmp_path / "s.npz"), "--output", str(tmp_path / "p.zarr")]) == 0
    assert main(["evaluate", str(tmp_path / "p.zarr"), "--labels", f"{root / 'data.zarr'}:label"]) == 0


def test_subprocess_evaluate(pipeline, tmp_path):
    _, y, src, root = pipeline
    exe = Path(sys.executable).with_name("rocketstream")
    head, pred = tmp_path / "h.npz", tmp_path / "p.zarr"
    assert main(["train", str(root / "f.zarr"), "--labels", str(root / "y.npy"), "--output", str(head)]) == 0
    assert main(["predict", src, "--variable", "X", "--model", str(root / "m.json"), "--head", str(head),
                 "--output", str(pred)]) == 0
    res = subprocess.run([str(exe), "evaluate", str(pred), "--labels", str(root / "y.npy")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "accuracy = " in res.stdout
    res = subprocess.run([str(exe), "evaluate", str(pred), "--labels", f"{src}:nope"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "'nope'" in res.stderr


def _fails(argv, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err


def test_bad_input_exits_2_with_one_line(pipeline, tmp_path, capsys):
    x, y, src, root = pipeline
    f, m = str(root / "f.zarr"), str(root / "m.json")
    head = tmp_path / "h.npz"
    assert main(["train", f, "--labels", str(root / "y.npy"), "--output", str(head)]) == 0
    capsys.readouterr()
    np.save(tmp_path / "short.npy", y[:10])
    other = fit(x, num_features=84, random_state=0)
    RidgeHead().fit(transform(x, other).cpu().numpy(), y).save(tmp_path / "small.npz")
    _fails(["train", str(tmp_path / "nope.zarr"), "--labels", str(root / "y.npy"), "--output",
            str(tmp_path / "a.npz")], capsys, "features not found")
    _fails(["train", f, "--labels", str(tmp_path / "short.npy"), "--output", str(tmp_path / "a.npz")], capsys,
           "10 entries but the features have 160 rows")
    _fails(["train", f, "--labels", f"{src}:nope", "--output", str(tmp_path / "a.npz")], capsys, "'nope'")
    _fails(["train", f, "--labels", str(root / "y.npy"), "--output", str(head)], capsys, "--overwrite")
    _fails(["train", f, "--labels", str(root / "y.npy"), "--output", str(tmp_path / "a.npz"), "--resume"],
           capsys, "softmax only")
    _fails(["train", f, "--labels", str(root / "y.npy"), "--output", str(tmp_path / "no" / "a.npz")], capsys,
           "does not exist")
    _fails(["train", f, "--labels", str(root / "y.npy"), "--output", str(tmp_path / "a.npz"), "--task",
            "regression"], capsys, "numeric")
    base = ["predict", src, "--variable", "X", "--model", m, "--output", str(tmp_path / "p.zarr")]
    _fails(base + ["--head", str(tmp_path / "small.npz")], capsys, "trained on 84 features")
    _fails(base + ["--head", str(tmp_path / "none.npz")], capsys, "head file not found")
    _fails(base + ["--head", str(root / "y.npy")], capsys, "head file")
    _fails(base + ["--head", str(head), "--scheduler", "bogus"], capsys, "unknown scheduler")
    _fails(["predict", src, "--variable", "nope", "--model", m, "--head", str(head), "--output",
            str(tmp_path / "p.zarr")], capsys, "'nope' not found")
    assert main(base + ["--head", str(head)]) == 0
    capsys.readouterr()
    _fails(base + ["--head", str(head)], capsys, "--overwrite")
    _fails(["evaluate", str(tmp_path / "p.zarr"), "--labels", str(tmp_path / "short.npy")], capsys,
           "160 predictions but 10 labels")
    _fails(["evaluate", f, "--labels", str(root / "y.npy")], capsys, "not a rocketstream predictions store")
    _fails(["evaluate", str(tmp_path / "missing.zarr"), "--labels", str(root / "y.npy")], capsys, "not found")
