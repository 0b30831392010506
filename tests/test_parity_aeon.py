"""Parity with aeon 1.6 MiniRocket for integer seeds on datasets shipped in aeon's wheel."""

import numpy as np
import pytest
from conftest import load_split

from rocketstream.core import fit, transform

CASES = [("GunPoint", 0), ("GunPoint", 11), ("ArrowHead", 1), ("ItalyPowerDemand", 2),
         ("BasicMotions", 0), ("BasicMotions", 7)]


def _aeon(name, seed):
    from aeon.transformations.collection.convolution_based import MiniRocket

    xtr, _ = load_split(name, "train")
    xte, _ = load_split(name, "test")
    ref = MiniRocket(random_state=seed).fit(xtr)
    return xtr, xte, ref


def assert_features_match(ours: np.ndarray, ref: np.ndarray, length: int) -> None:
    """Bitwise equal on >= 99.99% of values, the rest within 2/L (float ties flip one count)."""
    assert ours.shape == ref.shape and ours.dtype == np.float32
    differ = ours != ref
    assert differ.mean() <= 1e-4, f"{differ.sum()} of {differ.size} features differ"
    if differ.any():
        assert np.abs(ours - ref).max() <= 2.0 / length


@pytest.mark.parametrize("name,seed", CASES)
def test_parameters_and_features_match_aeon(name, seed):
    xtr, xte, ref = _aeon(name, seed)
    ours = fit(xtr, random_state=seed)
    n_per_comb, chan_idx, dil, nfd, biases = ref.parameters
    np.testing.assert_array_equal(ours.dilations, dil)
    np.testing.assert_array_equal(ours.features_per_dilation, nfd)
    np.testing.assert_array_equal(ours.channels_per_combination, n_per_comb)
    np.testing.assert_array_equal(ours.channel_indices, chan_idx)
    # biases equal up to float32 rounding (in practice bitwise on x86-64)
    np.testing.assert_allclose(ours.biases, biases, rtol=2**-23, atol=0)
    assert_features_match(transform(xte, ours).cpu().numpy(), ref.transform(xte), xtr.shape[-1])


def test_random_state_instance_like_aeon(gunpoint):
    from aeon.transformations.collection.convolution_based import MiniRocket

    xtr = gunpoint[0]
    ref = MiniRocket(random_state=np.random.RandomState(4)).fit(xtr)
    ours = fit(xtr, random_state=np.random.RandomState(4))
    np.testing.assert_array_equal(ours.biases, ref.parameters[4])


def test_small_num_features_and_dilations(basicmotions):
    from aeon.transformations.collection.convolution_based import MiniRocket

    xtr, _, xte, _ = basicmotions
    ref = MiniRocket(n_kernels=500, max_dilations_per_kernel=4, random_state=3).fit(xtr)
    ours = fit(xtr, num_features=500, max_dilations_per_kernel=4, random_state=3)
    assert ours.n_features_out == 420
    np.testing.assert_array_equal(ours.biases, ref.parameters[4])
    assert_features_match(transform(xte, ours).cpu().numpy(), ref.transform(xte), xtr.shape[-1])
