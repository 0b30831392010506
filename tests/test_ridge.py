"""Out-of-core exact ridge (rocketstream.heads.RidgeHead) against scikit-learn on real MiniRocket features."""

from __future__ import annotations

import functools

import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from conftest import load_split
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rocketstream.core import InputError, fit, transform
from rocketstream.heads import DEFAULT_ALPHAS, RidgeHead, feature_moments

ALPHAS = np.logspace(-3, 3, 10)


def to_zarr(path, x: np.ndarray, chunk_rows: int) -> zarr.Array:
    """Write ``x`` to a Zarr array on disk with several row chunks."""
    z = zarr.create_array(store=str(path), shape=x.shape, chunks=(chunk_rows, x.shape[1]), dtype=x.dtype)
    z[:] = x
    return z


@functools.cache
def minirocket_features(name: str, regression: bool = False):
    """MiniRocket features (random_state=0) of a dataset shipped with aeon: (ftr, ytr, fte, yte)."""
    if regression:
        from aeon.datasets import load_regression

        xtr, ytr = load_regression(name, split="train")
        xte, yte = load_regression(name, split="test")
        xtr, xte = xtr.astype(np.float32), xte.astype(np.float32)
    else:
        xtr, ytr = load_split(name, "train")
        xte, yte = load_split(name, "test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's 2 cores are shared; one thread is faster there
    try:
        params = fit(xtr, random_state=0)
        ftr, fte = transform(xtr, params).numpy(), transform(xte, params).numpy()
    finally:
        torch.set_num_threads(threads)
    return ftr, np.asarray(ytr), fte, np.asarray(yte)


def sklearn_mean_loo(pipe) -> np.ndarray:
    """Mean squared LOO residual per alpha from a fitted pipeline with store_cv_results=True."""
    res = pipe[-1].cv_results_
    return res.reshape(-1, res.shape[-1]).mean(axis=0)


@pytest.mark.parametrize("name", ["GunPoint", "BasicMotions"])
def test_classifier_matches_sklearn_pipeline(tmp_path, name):
    ftr, ytr, fte, yte = minirocket_features(name)
    assert ftr.shape[0] <= ftr.shape[1]  # the n x n Gram form
    head = RidgeHead().fit(to_zarr(tmp_path / "train.zarr", ftr, 16), ytr)
    sk = make_pipeline(
        StandardScaler(with_mean=False), RidgeClassifierCV(alphas=ALPHAS, store_cv_results=True)
    ).fit(ftr, ytr)
    assert head.mode_ == "gram"
    assert head.alpha_ == sk[-1].alpha_
    np.testing.assert_allclose(-head.cv_scores_, sklearn_mean_loo(sk), rtol=1e-5)
    zte = to_zarr(tmp_path / "test.zarr", fte, 32)
    np.testing.assert_array_equal(head.predict(zte), sk.predict(fte))
    np.testing.assert_allclose(head.decision_function(zte), sk.decision_function(fte), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(head.classes_, sk[-1].classes_)
    assert (head.predict(zte) == yte).mean() >= 0.95


def test_regression_matches_ridgecv(tmp_path):
    ftr, ytr, fte, _ = minirocket_features("CardanoSentiment", regression=True)
    head = RidgeHead(task="regression").fit(to_zarr(tmp_path / "train.zarr", ftr, 10), ytr)
    sk = make_pipeline(StandardScaler(with_mean=False), RidgeCV(alphas=ALPHAS, store_cv_results=True))
    sk.fit(ftr, ytr)
    assert head.alpha_ == sk[-1].alpha_
    np.testing.assert_allclose(-head.cv_scores_, sklearn_mean_loo(sk), rtol=1e-5)
    pred = head.predict(to_zarr(tmp_path / "test.zarr", fte, 8))
    assert pred.shape == (fte.shape[0],)
    np.testing.assert_allclose(pred, sk.predict(fte), rtol=1e-4, atol=1e-5)


def synthetic(n: int = 600, n_features: int = 24, seed: int = 0):
    """Long data (n > F) with unequal scales, an offset and a constant column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)) * rng.uniform(0.1, 10.0, n_features) + 3.0
    x[:, 5] = 2.0
    x = x.astype(np.float32)
    label = (x[:, 0] / 5 + x[:, 1] / 3 + rng.normal(size=n) > 0.6).astype(int) + (x[:, 2] > 3.0)
    targets = np.stack([x[:, :3] @ [1.0, 2.0, 3.0], x[:, 3] - x[:, 4]], axis=1) + rng.normal(size=(n, 2)) * 4
    return x, label, targets


def test_long_data_covariance_form_matches_sklearn(tmp_path):
    x, label, targets = synthetic()
    z = to_zarr(tmp_path / "x.zarr", x, 64)
    clf = RidgeHead().fit(z, label)
    sk = make_pipeline(
        StandardScaler(with_mean=False), RidgeClassifierCV(alphas=ALPHAS, store_cv_results=True)
    ).fit(x, label)
    assert clf.mode_ == "cov"
    assert clf.alpha_ == sk[-1].alpha_ and 1e-3 < clf.alpha_ < 1e3  # an interior alpha
    np.testing.assert_allclose(-clf.cv_scores_, sklearn_mean_loo(sk), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(z), sk.predict(x))
    np.testing.assert_allclose(clf.decision_function(x), sk.decision_function(x), rtol=1e-4, atol=1e-5)

    reg = RidgeHead(task="regression").fit(z, targets)
    skr = make_pipeline(StandardScaler(with_mean=False), RidgeCV(alphas=ALPHAS)).fit(x, targets)
    assert reg.alpha_ == skr[-1].alpha_
    assert reg.coef_.shape == (2, x.shape[1])
    np.testing.assert_allclose(reg.predict(z), skr.predict(x), rtol=1e-4, atol=1e-4)


def test_gram_and_covariance_forms_agree(tmp_path):
    x, label, _ = synthetic(n=300, n_features=40, seed=1)
    z = to_zarr(tmp_path / "x.zarr", x, 50)
    cov = RidgeHead(mode="cov").fit(z, label)
    gram = RidgeHead(mode="gram").fit(z, label)
    assert cov.alpha_ == gram.alpha_
    np.testing.assert_allclose(cov.cv_scores_, gram.cv_scores_, rtol=1e-8)
    np.testing.assert_allclose(cov.coef_, gram.coef_, rtol=1e-7, atol=1e-10)


def test_sources_and_label_containers_agree(tmp_path):
    """Zarr, NumPy and Dask features; NumPy, Zarr and xarray-coordinate labels give one model."""
    x, label, _ = synthetic(n=200, n_features=16, seed=2)
    ref = RidgeHead().fit(to_zarr(tmp_path / "x.zarr", x, 30), label)
    zl = zarr.create_array(store=str(tmp_path / "y.zarr"), shape=label.shape, dtype=label.dtype)
    zl[:] = label
    coord = xr.DataArray(x, dims=("sample", "feature"), coords={"label": ("sample", label)}).coords["label"]
    for features, labels in [(x, zl), (da.from_array(x, chunks=(45, 16)), coord)]:
        other = RidgeHead().fit(features, labels)
        assert other.alpha_ == ref.alpha_
        np.testing.assert_allclose(other.coef_, ref.coef_, rtol=1e-9, atol=1e-12)


def test_distributed_client_gives_the_same_model(tmp_path):
    distributed = pytest.importorskip("distributed")
    x, _, targets = synthetic(n=240, n_features=12, seed=3)
    z = to_zarr(tmp_path / "x.zarr", x, 20)
    ref = RidgeHead(task="regression").fit(z, targets[:, 0])
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
        got = RidgeHead(task="regression").fit(z, targets[:, 0])
    assert got.alpha_ == ref.alpha_
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-9)


def test_save_load_roundtrip(tmp_path):
    x, label, _ = synthetic(n=150, n_features=10, seed=4)
    head = RidgeHead().fit(x, label.astype(str))
    path = head.save(tmp_path / "ridge.npz")
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert "coef" in f.files
    back = RidgeHead.load(path)
    np.testing.assert_array_equal(back.predict(x), head.predict(x))
    assert back.alpha_ == head.alpha_ and list(back.classes_) == ["0", "1", "2"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        head.save(path)


def test_streamed_moments_match_numpy(tmp_path):
    x, _, _ = synthetic(n=333, n_features=9, seed=5)
    m = feature_moments(to_zarr(tmp_path / "x.zarr", x, 40))
    np.testing.assert_allclose(m.mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.var, x.astype(np.float64).var(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.scale(), StandardScaler(with_mean=False).fit(x).scale_, rtol=1e-12)
    assert m.scale()[5] == 1.0  # a constant feature keeps scale 1, as in StandardScaler


def test_errors_are_clear(tmp_path):
    x, label, _ = synthetic(n=100, n_features=8, seed=6)
    with pytest.raises(InputError, match="99 entries but the features have 100 rows"):
        RidgeHead().fit(x, label[:99])
    with pytest.raises(InputError, match="at least 2 classes.*found 1"):
        RidgeHead().fit(x, np.zeros(100, dtype=int))
    bad = x.copy()
    bad[57, 3] = np.nan
    with pytest.raises(InputError, match=r"NaN/Inf value\(s\) \(first in row 57\)"):
        RidgeHead().fit(to_zarr(tmp_path / "bad.zarr", bad, 16), label)
    with pytest.raises(InputError, match="2-D"):
        RidgeHead().fit(x[:, :, None], label)
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeHead().predict(x)
    head = RidgeHead(alphas=DEFAULT_ALPHAS).fit(x, label)
    with pytest.raises(InputError, match="7 columns but the head was fitted on 8"):
        head.predict(x[:, :7])
