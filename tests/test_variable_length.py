"""Unequal-length series: sktime MiniRocketMultivariateVariable semantics, accuracy, short series."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from rocketstream.core import InputError, fit
from rocketstream.core.transform import PreparedTransform, transform
from rocketstream.core.variable import fit_variable, is_variable, transform_variable
from rocketstream.ingest import read_ts


def _data(package: str, name: str, split: str):
    mod = __import__(package)
    path = Path(os.path.dirname(mod.__file__)) / "datasets" / "data" / name / f"{name}_{split}.ts"
    if not path.exists():
        pytest.skip(f"{name} is not shipped with this {package}")
    return read_ts(path)


@pytest.fixture(scope="module")
def vowels():
    return _data("aeon", "JapaneseVowels", "TRAIN"), _data("aeon", "JapaneseVowels", "TEST")


def _ridge_accuracy(tr, te, params) -> float:
    ftr, fte = transform_variable(tr.series, params), transform_variable(te.series, params)
    ytr, yte = tr.labels, te.labels
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(with_mean=False), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    return clf.fit(ftr, ytr).score(fte, yte)


def test_matches_sktime_variable_bitwise(vowels):
    pd = pytest.importorskip("pandas")
    rocket = pytest.importorskip("sktime.transformations.panel.rocket")
    tr, te = vowels

    def frames(col):
        return [pd.DataFrame(s.T.astype(np.float64)) for s in col.series]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rocket.MiniRocketMultivariateVariable(random_state=3, pad_value_short_series=0.0)
        ref.fit(frames(tr))
        ref_f = np.asarray(ref.transform(frames(te)), dtype=np.float32)
    ours = fit_variable(tr.series, random_state=3, pad_short=True)
    n_per_comb, chan_idx, dil, nfd, biases = ref.parameters
    np.testing.assert_array_equal(ours.dilations, dil)
    np.testing.assert_array_equal(ours.channel_indices, chan_idx)
    np.testing.assert_array_equal(ours.biases, biases)
    np.testing.assert_array_equal(transform_variable(te.series, ours), ref_f)


def test_japanese_vowels_accuracy(vowels):
    tr, te = vowels
    p = fit_variable(tr.series, random_state=0, pad_short=True)
    acc = _ridge_accuracy(tr, te, p)
    assert acc >= 0.97


def test_plaid_accuracy_from_sktime():
    tr, te = _data("sktime", "PLAID", "TRAIN"), _data("sktime", "PLAID", "TEST")
    assert not tr.equal_length
    p = fit_variable(tr.series, random_state=0)
    acc = _ridge_accuracy(tr, te, p)
    assert acc >= 0.93  # 0.955 with seed 0; sktime's variable MiniRocket gives the same features


def test_padded_array_with_lengths_equals_list():
    rng = np.random.default_rng(0)
    lengths = np.array([30, 9, 57, 30, 12])
    padded = np.zeros((5, 2, 57), np.float32)
    series = []
    for i, n in enumerate(lengths):
        s = rng.standard_normal((2, n)).astype(np.float32)
        padded[i, :, :n] = s
        series.append(s)
    p = fit_variable(padded, lengths, random_state=0)
    assert p.equals(fit_variable(series, random_state=0)) and is_variable(p)
    f = transform_variable(padded, p, lengths)
    np.testing.assert_array_equal(f, transform_variable(series, p))
    assert np.isfinite(f).all() and f.shape == (5, p.n_features_out)
    # a series' features do not depend on the other series or on its padding
    np.testing.assert_array_equal(transform_variable([series[1]], p)[0], f[1])


def test_equal_length_gives_fixed_length_biases(gunpoint):
    xtr = gunpoint[0]
    assert np.array_equal(fit_variable(xtr, random_state=1).biases, fit(xtr, random_state=1).biases)


def test_native_and_torch_agree_on_all_padded(monkeypatch):
    rng = np.random.default_rng(1)
    series = [rng.standard_normal((3, n)).astype(np.float32) for n in (9, 10, 40, 101, 101)]
    p = fit_variable(series, random_state=2, num_features=840)
    native = transform_variable(series, p)
    monkeypatch.setenv("ROCKETSTREAM_NATIVE", "0")
    np.testing.assert_array_equal(transform_variable(series, p), native)
    x = np.stack(series[3:])
    torch_plan = PreparedTransform(p, "cpu", length=101, all_padded=True)
    np.testing.assert_array_equal(transform(x, p, prepared=torch_plan).cpu().numpy(), native[3:])


def test_short_series_error_and_opt_in_padding():
    short = [np.ones((1, 5), np.float32), np.arange(20, dtype=np.float32)[None]]
    with pytest.raises(InputError, match="pad_short=True"):
        fit_variable(short, random_state=0)
    p = fit_variable(short, random_state=0, pad_short=True)
    padded = [np.pad(short[0], ((0, 0), (0, 4))), short[1]]
    np.testing.assert_array_equal(transform_variable(short, p), transform_variable(padded, p))
    assert p.extra["pad_short"] is True


def test_mixed_channels_and_bad_lengths():
    with pytest.raises(InputError, match="channels"):
        fit_variable([np.ones((2, 20)), np.ones((3, 20))])
    with pytest.raises(InputError, match="lengths"):
        fit_variable(np.ones((2, 1, 20)), lengths=[20, 21])
    with pytest.raises(InputError, match="NaN"):
        fit_variable([np.full((1, 20), np.nan)])
