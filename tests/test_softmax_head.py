"""Softmax / linear head trained out of core from a features Zarr (rocketstream.heads.train_softmax)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import zarr
from test_ridge import minirocket_features, to_zarr

from rocketstream.core import InputError
from rocketstream.heads import (
    CheckpointError,
    ChunkShuffleLoader,
    FeatureSource,
    SoftmaxHead,
    feature_moments,
    train_softmax,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small torch ops run faster on one thread on the shared 2-core test machine; results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gunpoint_store(tmp_path_factory):
    ftr, ytr, fte, yte = minirocket_features("GunPoint")
    root = tmp_path_factory.mktemp("gunpoint")
    return to_zarr(root / "train.zarr", ftr, 16), ytr, to_zarr(root / "test.zarr", fte, 32), yte


def test_gunpoint_accuracy_and_outputs(gunpoint_store, tmp_path):
    ztr, ytr, zte, yte = gunpoint_store
    ckpt = tmp_path / "head"
    head = train_softmax(ztr, ytr, checkpoint_dir=ckpt, epochs=50, batch_size=256, lr=1e-4, seed=0,
                         validation_fraction=0.1, device="cpu", resume=False, progress=False)
    accuracy = float((head.predict(zte) == yte).mean())
    assert accuracy >= 0.95, accuracy
    proba = head.predict_proba(zte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(head.classes_[proba.argmax(axis=1)], head.predict(zte))

    state = torch.load(ckpt / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == len(head.history_["epoch"]) and state["config"]["n_validation"] == 5
    metrics = json.loads((ckpt / "metrics.json").read_text())
    assert metrics["best_epoch"] == head.best_epoch_ and len(metrics["history"]["val_loss"]) == state["epoch"]
    assert (ckpt / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = SoftmaxHead.load(ckpt / "head.npz")
    np.testing.assert_array_equal(back.predict(zte), head.predict(zte))
    np.testing.assert_array_equal(back.weight_, head.weight_)


def test_resume_is_bitwise_identical(gunpoint_store, tmp_path):
    ztr, ytr, _, _ = gunpoint_store
    kw = dict(epochs=7, batch_size=8, lr=1e-3, seed=3, block_rows=16, validation_fraction=0.2)
    full = train_softmax(ztr, ytr, checkpoint_dir=tmp_path / "full", **kw)
    train_softmax(ztr, ytr, checkpoint_dir=tmp_path / "cut", **{**kw, "epochs": 3})
    with pytest.raises(FileExistsError, match="resume=True"):
        train_softmax(ztr, ytr, checkpoint_dir=tmp_path / "cut", **kw)
    resumed = train_softmax(ztr, ytr, checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert torch.equal(torch.from_numpy(resumed.weight_), torch.from_numpy(full.weight_))
    assert torch.equal(torch.from_numpy(resumed.bias_), torch.from_numpy(full.bias_))
    assert resumed.history_ == full.history_ and resumed.best_epoch_ == full.best_epoch_
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert torch.equal(a["model"]["weight"], b["model"]["weight"])
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg_sq"], b["optimizer"]["state"][0]["exp_avg_sq"])
    assert a["scheduler"] == b["scheduler"]
    # a different seed is a different run: refuse to mix them
    with pytest.raises(CheckpointError, match="seed"):
        train_softmax(ztr, ytr, checkpoint_dir=tmp_path / "cut", resume=True, **{**kw, "seed": 4})


def test_regression_and_explicit_validation(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 20)).astype(np.float32) * 3 + 1
    y = x[:, :4] @ np.array([1.0, -2.0, 0.5, 3.0]) + 100 + rng.normal(size=1200) * 0.1
    z = to_zarr(tmp_path / "x.zarr", x[:1000], 128)
    head = train_softmax(z, y[:1000], task="regression", epochs=30, batch_size=64, lr=1e-2, seed=1,
                         validation=(x[1000:1100], y[1000:1100]), checkpoint_dir=None, progress=True)
    pred = head.predict(x[1100:])
    assert pred.shape == (100,)
    r2 = 1 - np.mean((pred - y[1100:]) ** 2) / np.var(y[1100:])
    assert r2 > 0.99, r2


def test_loader_visits_every_row_once_in_a_seeded_order(tmp_path):
    x = np.arange(103 * 3, dtype=np.float32).reshape(103, 3)
    source = FeatureSource(to_zarr(tmp_path / "x.zarr", x, 10), min_block_rows=20)
    mask = np.arange(103) % 4 != 0
    loader = ChunkShuffleLoader(source, batch_size=7, seed=1, row_mask=mask)
    batches = list(loader.epoch(0))
    idx = np.concatenate([i for i, _ in batches])
    np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(mask))
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), x[idx])
    assert [len(i) for i, _ in batches[:-1]] == [7] * (len(batches) - 1) and len(batches) == len(loader)
    np.testing.assert_array_equal(np.concatenate([i for i, _ in loader.epoch(0)]), idx)
    assert not np.array_equal(np.concatenate([i for i, _ in loader.epoch(1)]), idx)
    assert not np.array_equal(idx, np.sort(idx))


def test_moments_of_selected_rows(tmp_path):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(500, 6)) * 1e3 + 1e4).astype(np.float32)
    mask = rng.random(500) < 0.7
    m = feature_moments(to_zarr(tmp_path / "x.zarr", x, 33), row_mask=mask)
    ref = x[mask].astype(np.float64)
    assert m.count == mask.sum()
    np.testing.assert_allclose(m.mean, ref.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m.var, ref.var(axis=0), rtol=1e-10)


def test_errors_are_clear(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    labels = np.arange(60) % 3
    with pytest.raises(InputError, match="59 entries but the features have 60 rows"):
        train_softmax(x, labels[:59], epochs=1)
    with pytest.raises(InputError, match="at least 2 classes.*found 1"):
        train_softmax(x, np.full(60, "a"), epochs=1)
    bad = x.copy()
    bad[41, 2] = np.inf
    with pytest.raises(InputError, match=r"NaN/Inf value\(s\) \(first in row 41\)"):
        train_softmax(to_zarr(tmp_path / "bad.zarr", bad, 16), labels, epochs=1)
    stored = zarr.create_array(store=str(tmp_path / "y.zarr"), shape=(60,), dtype="int64")
    stored[:] = labels
    head = train_softmax(x, stored, epochs=1)  # labels straight from a Zarr array
    with pytest.raises(InputError, match="4 columns but the head was trained on 5"):
        head.predict(x[:, :4])
