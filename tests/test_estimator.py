"""MiniRocketTransformer: the scikit-learn protocol, exactness, errors and persistence."""

import numpy as np
import pytest
import torch

from rocketstream import MiniRocketTransformer
from rocketstream.api import NotFittedError
from rocketstream.core import InputError, fit, transform


def test_get_and_set_params():
    est = MiniRocketTransformer()
    assert est.get_params() == {
        "batch_size": None, "device": None, "max_dilations_per_kernel": 32, "memory_budget": None,
        "num_features": 10_000, "random_state": None,
    }
    assert est.set_params(num_features=840, random_state=3) is est
    assert est.get_params()["num_features"] == 840 and est.random_state == 3
    with pytest.raises(ValueError, match="invalid parameter 'n_kernels'"):
        est.set_params(n_kernels=5)
    assert repr(est) == "MiniRocketTransformer(num_features=840, random_state=3)"


def test_clone_round_trip_keeps_random_state(gunpoint):
    from sklearn.base import clone

    xtr, _, xte, _ = gunpoint
    est = MiniRocketTransformer(num_features=840, random_state=5, batch_size=7)
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()

    rs = np.random.RandomState(4)
    est = MiniRocketTransformer(num_features=840, random_state=rs)
    copy = clone(est)
    assert est.random_state is rs  # left as passed
    assert copy.random_state is not rs
    assert np.array_equal(copy.random_state.get_state()[1], rs.get_state()[1])
    # both draw the same seed from equal RandomState copies, hence the same model
    a = est.fit(xtr).transform(xte)
    b = copy.fit(xtr).transform(xte)
    np.testing.assert_array_equal(a, b)
    # clone of a fitted estimator is unfitted
    assert not hasattr(clone(est), "parameters_")


def test_fit_sets_attributes_and_fit_transform_is_bitwise(basicmotions):
    xtr, _, _, _ = basicmotions
    est = MiniRocketTransformer(num_features=1000, random_state=0)
    a = est.fit_transform(xtr)
    assert est.n_features_out_ == 924 and est.n_channels_ == 6 and est.n_timepoints_ == 100
    assert est.seed_ == 0 and est.parameters_.is_fitted
    b = MiniRocketTransformer(num_features=1000, random_state=0).fit(xtr).transform(xtr)
    assert a.dtype == np.float32 and a.shape == (40, 924)
    np.testing.assert_array_equal(a, b)
    assert len(est.get_feature_names_out()) == 924


def test_transform_equals_aeon(gunpoint):
    from aeon.transformations.collection.convolution_based import MiniRocket

    xtr, _, xte, _ = gunpoint
    ref = MiniRocket(random_state=0).fit(xtr).transform(xte)
    ours = MiniRocketTransformer(random_state=0).fit(xtr).transform(xte)
    assert isinstance(ours, np.ndarray) and ours.shape == ref.shape == (150, 9996)
    differ = ours != ref
    assert differ.mean() <= 1e-4, f"{differ.sum()} features differ from aeon"
    if differ.any():  # float ties may flip one count
        assert np.abs(ours - ref).max() <= 2.0 / xtr.shape[-1]


def test_matches_core_and_batching_does_not_matter(gunpoint):
    xtr, _, xte, _ = gunpoint
    params = fit(xtr, num_features=840, random_state=2)
    core_feats = transform(xte, params).cpu().numpy()
    est = MiniRocketTransformer(num_features=840, random_state=2, batch_size=16).fit(xtr)
    assert est.parameters_.equals(params)
    np.testing.assert_array_equal(est.transform(xte), core_feats)


def test_not_fitted_error():
    est = MiniRocketTransformer()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.transform(np.zeros((2, 1, 20), dtype=np.float32))
    with pytest.raises(NotFittedError):
        est.save("never-written.json")
    # the sklearn-style error classes
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


def test_mismatch_and_bad_input_errors(basicmotions):
    xtr, _, xte, _ = basicmotions
    est = MiniRocketTransformer(num_features=840, random_state=0).fit(xtr)
    with pytest.raises(InputError, match="has 5 channels but the model was fitted on 6"):
        est.transform(xte[:, :5])
    with pytest.raises(InputError, match="length 90 but the model was fitted on length 100"):
        est.transform(xte[:, :, :90])
    with pytest.raises(InputError, match="3-D"):
        est.transform(xte[:, 0])
    bad = xte.copy()
    bad[3, 1, 7] = np.nan
    with pytest.raises(InputError, match="first in sample 3"):
        est.transform(bad)


def test_save_load_round_trip(tmp_path, basicmotions):
    xtr, _, xte, _ = basicmotions
    est = MiniRocketTransformer(num_features=1000, random_state=9).fit(xtr)
    path = est.save(tmp_path / "model.json")
    loaded = MiniRocketTransformer.load(path, batch_size=3)
    assert loaded.parameters_.equals(est.parameters_)
    assert loaded.random_state == 9 and loaded.num_features == 1000 and loaded.batch_size == 3
    np.testing.assert_array_equal(loaded.transform(xte), est.transform(xte))
    # refitting the loaded estimator reproduces the model (its random_state is the recorded seed)
    assert loaded.fit(xtr).parameters_.equals(est.parameters_)


def test_torch_input_returns_cpu_tensor(gunpoint):
    xtr, _, xte, _ = gunpoint
    est = MiniRocketTransformer(num_features=840, random_state=1)
    out = est.fit_transform(torch.from_numpy(xtr))
    assert torch.is_tensor(out) and out.device.type == "cpu" and out.dtype == torch.float32
    np_out = est.transform(xtr)
    assert isinstance(np_out, np.ndarray)
    np.testing.assert_array_equal(out.cpu().numpy(), np_out)
    # float64 and integer inputs are accepted and cast to float32
    np.testing.assert_array_equal(est.transform(xtr.astype(np.float64)), np_out)


def test_pickle_round_trip(gunpoint):
    import pickle

    xtr, _, xte, _ = gunpoint
    est = MiniRocketTransformer(num_features=840, random_state=1).fit(xtr)
    before = est.transform(xte)  # builds the cached plan, which is not pickled
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(xte), before)
