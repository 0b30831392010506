"""Prediction into Zarr (transform + head per chunk) equals the in-memory path; evaluation numbers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers.data import write_zarr

from rocketstream.api.predict import (
    evaluate,
    labels_array,
    load_head,
    load_labels,
    open_predictions,
    predict,
)
from rocketstream.cli.demo import synthetic_chunk
from rocketstream.core import InputError, ModelFileError, fit, save, transform
from rocketstream.heads import RidgeHead, train_softmax


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    x, y = synthetic_chunk(150, 2, 90, seed=3, stream=0, index=0, n_classes=3)
    src = write_zarr(root / "data.zarr", x, 40, group_var="X")
    params = fit(x[:100], num_features=336, random_state=0)
    feats = transform(x, params).cpu().numpy()
    ridge = RidgeHead().fit(feats[:100], y[:100], model=params)
    return x, y, src, params, feats, ridge, root


def test_ridge_predictions_equal_in_memory(data, tmp_path):
    x, y, src, params, feats, ridge, _ = data
    out = tmp_path / "pred.zarr"
    group = predict(src, params, ridge, out, variable="X", chunk_size=32, scheduler="threads")
    assert sorted(group.keys()) == ["chunk_done", "chunk_sha256", "class", "decision", "input_label",
                                    "input_sha256", "label"]  # input_label: the input's label coordinate
    assert group["label"].chunks == (32,)
    np.testing.assert_array_equal(labels_array(group["label"]), ridge.predict(feats))
    np.testing.assert_allclose(group["decision"][:], ridge.decision_function(feats), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(labels_array(group["class"]), ridge.classes_)
    meta = dict(open_predictions(out).attrs)["rocketstream"]
    assert meta["complete"] and meta["task"] == "classification" and meta["head"]["kind"] == "ridge"
    assert meta["model"]["seed"] == 0 and meta["model"]["n_features"] == 336 and meta["n_samples"] == 150
    ds = xr.open_zarr(out, consolidated=False)
    assert ds["decision"].dims == ("sample", "class") and ds.sizes["sample"] == 150


def test_softmax_from_files_equals_in_memory(data, tmp_path):
    x, y, src, params, feats, _, _ = data
    head = train_softmax(feats[:100], y[:100], epochs=3, lr=1e-3, seed=1, model=params)
    save(params, tmp_path / "m.json")
    head.save(tmp_path / "s.npz")
    group = predict(src, tmp_path / "m.json", tmp_path / "s", tmp_path / "p.zarr", variable="X",
                    scheduler="synchronous")
    assert group["proba"].dtype == np.float32 and group["proba"].shape == (150, 3)
    np.testing.assert_allclose(group["proba"][:], head.predict_proba(feats), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(labels_array(group["label"]), head.predict(feats))
    meta = dict(group.attrs)["rocketstream"]
    assert meta["head"]["kind"] == "softmax" and len(meta["head"]["sha256"]) == 64
    assert meta["model"]["path"].endswith("m.json")


def test_regression_value(data, tmp_path):
    x, _, _, params, feats, _, _ = data
    target = x[:, 0, :10].mean(axis=1).astype(np.float64)
    head = RidgeHead(task="regression").fit(feats[:100], target[:100], model=params)
    group = predict(x, params, head, tmp_path / "r.zarr", chunk_size=64, scheduler="synchronous")
    assert sorted(group.keys()) == ["chunk_done", "chunk_sha256", "input_sha256", "value"]
    np.testing.assert_allclose(group["value"][:], head.predict(feats), rtol=1e-12, atol=1e-12)
    m = evaluate(tmp_path / "r.zarr", target, verbose=False)
    assert m["task"] == "regression" and m["n"] == 150 and m["rmse"] >= 0


def test_evaluate_hand_checked(capsys):
    m = evaluate(np.array(["a", "b", "a", "c"]), np.array(["a", "b", "b", "c"]))
    assert m["accuracy"] == 0.75 and m["correct"] == 3 and m["classes"] == ["a", "b", "c"]
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    out = capsys.readouterr().out
    assert "accuracy = 0.7500 (3/4)" in out and "rows: true class" in out
    r = evaluate(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), verbose=False)
    assert r["rmse"] == pytest.approx(np.sqrt(4 / 3)) and r["mae"] == pytest.approx(2 / 3)
    assert r["r2"] == pytest.approx(1 - 4 / (78 / 9))
    with pytest.raises(InputError, match="3 predictions but 2 labels"):
        evaluate(np.array([1, 2, 3]), np.array([1, 2]), verbose=False)


def test_load_head_any_kind(data, tmp_path):
    _, y, _, _, feats, ridge, _ = data
    ridge.save(tmp_path / "r.npz")
    assert isinstance(load_head(tmp_path / "r"), RidgeHead)
    train_softmax(feats[:60], y[:60], epochs=1, checkpoint_dir=tmp_path / "ckpt")
    assert load_head(tmp_path / "ckpt").classes_.tolist() == sorted(set(y[:60]))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a rocketstream head"):
        load_head(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="rocketstream train"):
        load_head(tmp_path / "missing.npz")


def test_safe_outputs_and_clear_errors(data, tmp_path):
    x, y, src, params, feats, ridge, root = data
    out = tmp_path / "p.zarr"
    predict(src, params, ridge, out, variable="X", scheduler="synchronous")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="overwrite"):
        predict(src, params, ridge, out, variable="X", scheduler="synchronous")
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    predict(src, params, ridge, out, variable="X", scheduler="synchronous", overwrite=True)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="is a directory that is not a rocketstream store; refusing"):
        predict(src, params, ridge, tmp_path / "plain", variable="X", overwrite=True)
    small = RidgeHead().fit(feats[:100, :84], y[:100])
    with pytest.raises(InputError, match="trained on 84 features but the model makes 336"):
        predict(src, params, small, tmp_path / "q.zarr", variable="X")
    with pytest.raises(InputError, match="channels"):
        predict(np.zeros((4, 3, 90), np.float32), params, ridge, tmp_path / "q.zarr")
    g = zarr.open_group(str(tmp_path / "p.zarr"), mode="r+")
    g.attrs["rocketstream"] = {**dict(g.attrs)["rocketstream"], "complete": False}
    with pytest.raises(ValueError, match="incomplete"):
        evaluate(tmp_path / "p.zarr", y, verbose=False)
    with pytest.raises(ValueError, match="not a rocketstream predictions store"):
        evaluate(src, y, verbose=False)


def test_load_labels_specs(data, tmp_path):
    _, y, src, *_ = data
    np.testing.assert_array_equal(load_labels(f"{src}:label"), np.arange(150) % 3)
    np.testing.assert_array_equal(load_labels(src), np.arange(150) % 3)
    np.save(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(load_labels(tmp_path / "y.npy"), y)
    with pytest.raises(InputError, match="no 'nope' array"):
        load_labels(f"{src}:nope")
    with pytest.raises(FileNotFoundError, match="labels not found"):
        load_labels(tmp_path / "none.zarr")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_ridge_predictions_do_not_depend_on_chunking(tmp_path, n_classes):
    """A row's decision is the same bits whatever chunk (and BLAS call shape) it falls in."""
    x, y = synthetic_chunk(90, 2, 60, seed=5, stream=0, index=0, n_classes=n_classes)
    src = write_zarr(tmp_path / "data.zarr", x, 30, group_var="X")
    params = fit(x, num_features=336, random_state=0)
    head = RidgeHead().fit(transform(x, params).cpu().numpy(), y, model=params)
    stores = [predict(src, params, head, tmp_path / f"p{rows}.zarr", variable="X", chunk_size=rows,
                      scheduler="synchronous") for rows in (1, 7, 90)]
    for other in stores[1:]:
        np.testing.assert_array_equal(other["decision"][:], stores[0]["decision"][:])
        np.testing.assert_array_equal(other["label"][:], stores[0]["label"][:])
