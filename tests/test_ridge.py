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
from rocketstream.heads.loader import FeatureSource
from rocketstream.heads.ridge_stats import target_columns

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
        ftr, fte = transform(xtr, params).cpu().numpy(), transform(xte, params).cpu().numpy()
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


# ----------------------------------------------------------------- covariance form: the tridiagonal solver
@functools.cache
def one_split_features(name: str, split: str, num_features: int, regression: bool = False):
    """MiniRocket features (random_state=0, fitted on the same rows) of one split of an aeon dataset."""
    if regression:
        from aeon.datasets import load_regression

        x, y = load_regression(name, split=split)
        x = x.astype(np.float32)
    else:
        x, y = load_split(name, split)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = fit(x, num_features=num_features, random_state=0)
        f = transform(x, params).cpu().numpy()
    finally:
        torch.set_num_threads(threads)
    return f, np.asarray(y)


def eigh_reference(x: np.ndarray, y: np.ndarray, alphas: np.ndarray):
    """The former solver's mathematics in memory: eigendecomposition of Z'Z, exact LOO for every alpha.

    ``y``: the encoded target columns. Returns (alpha, mean squared LOO residual per alpha, coef (F, T),
    decisions of the rows of ``x``)."""
    x = x.astype(np.float64)
    n = x.shape[0]
    z = (x - x.mean(axis=0)) / StandardScaler(with_mean=False).fit(x).scale_
    yc = y - y.mean(axis=0)
    d, v = np.linalg.eigh(z.T @ z)
    p, vty = z @ v, v.T @ (z.T @ yc)
    scores, coefs = [], []
    for a in alphas:
        inv = 1.0 / (d + a)
        lev = (p * p) @ inv
        loo = (yc - p @ (inv[:, None] * vty)) / (1.0 - lev - 1.0 / n)[:, None]
        scores.append(np.mean(loo**2))
        coefs.append(v @ (inv[:, None] * vty))
    best = int(np.argmin(scores))  # the first of equal minima
    return alphas[best], np.asarray(scores), coefs[best], z @ coefs[best] + y.mean(axis=0)


COV_CASES = {  # n > F: the covariance form, on real MiniRocket features
    "two classes": ("ItalyPowerDemand", "test", 168, False),  # 1029 x 168
    "three classes": ("ArrowHead", "test", 168, False),  # 175 x 168: nearly square, large leverages
    "regression": ("Covid3Month", "train", 84, True),  # 140 x 84
}


REDUCTIONS = {  # (reflectors per panel, band half-width); these sizes choose tridiagonal unless told
    "band": (None, None),
    "band, several panels": (16, None),  # the last panel partial
    "narrow band": (16, 8),  # solve blocks wider than the band
    "tridiagonal": (None, 1),  # dsytrd: small F, or where dsytrd_sy2sb cannot be found
}


@pytest.mark.parametrize("reduction", list(REDUCTIONS))
@pytest.mark.parametrize("case", list(COV_CASES))
def test_covariance_form_equals_the_eigendecomposition_and_sklearn(tmp_path, monkeypatch, case, reduction):
    name, split, num_features, regression = COV_CASES[case]
    x, y = one_split_features(name, split, num_features, regression)
    assert x.shape[0] > x.shape[1]
    panel, band = REDUCTIONS[reduction]
    if panel:
        monkeypatch.setattr("rocketstream.heads.ridge_solve.PANEL", panel)
    if band:
        monkeypatch.setattr("rocketstream.heads.ridge_solve.BAND", band)
    if band != 1:
        monkeypatch.setattr("rocketstream.heads.ridge_solve.BAND_BREAK_EVEN", 0.0)
    task = "regression" if regression else "classification"
    source = x if case == "two classes" else to_zarr(tmp_path / "x.zarr", x, 16)  # NumPy, or Zarr chunks
    head = RidgeHead(task=task).fit(source, y)
    assert head.mode_ == "cov"
    if regression:
        encoded = y[:, None].astype(np.float64)
    else:
        classes = np.unique(y)
        encoded = 2.0 * (y[:, None] == classes[None, :]) - 1.0
        encoded = encoded[:, 1:] if classes.size == 2 else encoded
    alpha, scores, coef, decisions = eigh_reference(x, encoded, ALPHAS)
    assert head.alpha_ == alpha
    np.testing.assert_allclose(-head.cv_scores_, scores, rtol=1e-9)
    got = np.atleast_2d(head.coef_).T  # for the standardised features
    assert np.abs(got - coef).max() <= 1e-9 * np.abs(coef).max()
    dec = head.decision_function(x)
    assert np.abs(dec - decisions.reshape(dec.shape)).max() <= 1e-9 * np.abs(decisions).max()

    sk_ridge = RidgeCV(alphas=ALPHAS, store_cv_results=True) if regression else \
        RidgeClassifierCV(alphas=ALPHAS, store_cv_results=True)
    sk = make_pipeline(StandardScaler(with_mean=False), sk_ridge).fit(x, y)
    assert head.alpha_ == sk[-1].alpha_
    np.testing.assert_allclose(-head.cv_scores_, sklearn_mean_loo(sk), rtol=1e-5)
    sk_dec = sk.predict(x) if regression else sk.decision_function(x)
    assert np.abs(dec - sk_dec).max() <= 1e-5 * np.abs(sk_dec).max()  # scikit-learn works in float32
    if not regression:
        np.testing.assert_array_equal(head.predict(x), sk.predict(x))


def test_solve_leaves_the_statistics_as_accumulated(tmp_path):
    """The solver works in the co-moment matrix's upper triangle and puts it back bit for bit."""
    x, label, _ = synthetic(n=700, n_features=150, seed=7)
    head = RidgeHead().fit(to_zarr(tmp_path / "x.zarr", x, 50), label)
    c = head.stats_.comoment
    assert c.flags.c_contiguous and np.array_equal(c, c.T)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(axis=0)).T @ (x64 - x64.mean(axis=0))
    np.testing.assert_allclose(c, ref, rtol=1e-10, atol=1e-9 * np.abs(ref).max())
    before = c.copy()
    y_cols = target_columns(label, "classification")[0]
    for alpha in (None, head.alpha_):  # re-select alpha, or keep it (a Cholesky solve)
        again = RidgeHead()
        again._solve(FeatureSource(x), y_cols, head.stats_, ALPHAS, 2, False, alpha=alpha)
        assert np.array_equal(head.stats_.comoment, before)
        np.testing.assert_allclose(again.coef_, head.coef_, rtol=1e-9, atol=1e-12 * np.abs(head.coef_).max())


@pytest.mark.parametrize("n_features", [1, 2])
def test_covariance_form_with_one_or_two_features(n_features):
    rng = np.random.default_rng(n_features)
    x = rng.standard_normal((120, n_features)).astype(np.float32) * 3 + 1
    y = (x[:, 0] + rng.standard_normal(120) > 1).astype(int)
    head = RidgeHead().fit(x, y)
    sk = make_pipeline(StandardScaler(with_mean=False), RidgeClassifierCV(alphas=ALPHAS)).fit(x, y)
    assert head.mode_ == "cov" and head.alpha_ == sk[-1].alpha_
    np.testing.assert_allclose(head.decision_function(x), sk.decision_function(x), rtol=1e-5, atol=1e-6)


def test_gram_form_fit_is_quiet(tmp_path):
    """The Gram pass (z z' over many row chunks) rechunks on purpose: no Dask PerformanceWarning reaches
    the user of RidgeHead.fit."""
    import warnings

    rng = np.random.default_rng(0)
    x = rng.random((60, 200)).astype(np.float32)
    y = np.arange(60) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head = RidgeHead(mode="gram").fit(to_zarr(tmp_path / "f.zarr", x, 5), y)
    assert head.mode_ == "gram"
