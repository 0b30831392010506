import numpy as np
import pytest

from rocketstream.core import fit_dilations, plan, quantile_levels, resolve_seed

# (length, dilations tail, features per dilation) from the reference's worked table
TABLE = [
    (9, [1], [119]),
    (24, [1, 2], [79, 40]),
    (25, [1, 2, 3], [75, 41, 3]),  # the reference doc's table says [1,2],[75,44]; aeon agrees here
    (84, list(range(1, 11)), [38, 19, 15, 12, 8, 7, 7, 7, 3, 3]),
    (100, list(range(1, 13)), [34, 19, 15, 8, 12, 4, 8, 7, 3, 3, 3, 3]),
    (150, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 18],
     [30, 15, 12, 12, 4, 8, 8, 4, 4, 4, 3, 3, 3, 3, 3, 3]),
    (1460, None, [19, 8, 8] + [4] * 15 + [3] * 8),
    (10000, None, [15, 4, 8] + [4] * 17 + [3] * 8),
    (1_000_000, None, [8] + [4] * 21 + [3] * 9),
]


@pytest.mark.parametrize("length,dilations,nfd", TABLE)
def test_fit_dilations_reference_table(length, dilations, nfd):
    dil, got = fit_dilations(length)
    assert got.tolist() == nfd
    assert got.sum() == 119
    if dilations is not None:
        assert dil.tolist() == dilations
    assert dil[0] == 1 and np.all(np.diff(dil) > 0)


@pytest.mark.parametrize("max_dil", [32, 6, 1])
def test_fit_dilations_match_aeon_over_lengths(max_dil):
    from aeon.transformations.collection.convolution_based._minirocket import _fit_dilations

    for length in [*range(9, 300), 1000, 4097, 65536, 10**6, 10**7]:
        for nf in (84, 1000, 10_000):
            d_ref, n_ref = _fit_dilations(length, nf, max_dil)
            d, n = fit_dilations(length, nf, max_dil)
            assert d.tolist() == d_ref.tolist() and n.tolist() == n_ref.tolist(), (length, nf)


def test_fit_dilations_matches_aeon_small_case():
    dil, nfd = fit_dilations(32, 1680, 6)
    assert dil.tolist() == [1, 2, 3] and nfd.tolist() == [11, 6, 3]


def test_fit_dilations_bad_length():
    with pytest.raises(ValueError, match="at least 9"):
        fit_dilations(8)


def test_quantiles_match_aeon():
    from aeon.transformations.collection.convolution_based._minirocket import _quantiles

    np.testing.assert_array_equal(quantile_levels(9996), _quantiles(9996))
    assert quantile_levels(3).tolist() == pytest.approx([0.618034, 0.236068, 0.854102], abs=1e-6)


def test_example_indices_gunpoint_seed0(gunpoint):
    xtr = gunpoint[0]
    p = plan(len(xtr), 1, xtr.shape[-1], random_state=0)
    assert p.example_indices[:10].tolist() == [44, 47, 0, 3, 3, 39, 9, 19, 21, 36]


def test_seed_resolution():
    assert resolve_seed(7) == 7
    rs_a, rs_b = np.random.RandomState(3), np.random.RandomState(3)
    assert resolve_seed(rs_a) == resolve_seed(rs_b)
    s = resolve_seed(None)
    assert 0 <= s < 2**31
    with pytest.raises(TypeError, match="random_state"):
        resolve_seed("seven")
    with pytest.raises(ValueError, match="2\\*\\*32"):
        resolve_seed(-1)


def test_plan_uses_no_global_rng():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    plan(100, 3, 500, random_state=5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_num_features_below_84_is_clamped():
    p = plan(10, 1, 50, num_features=10, random_state=0)
    assert p.n_features_out == 84


def test_feature_table_layout():
    p = plan(10, 2, 150, random_state=0)
    t = p.feature_table()
    assert len(t["dilation"]) == p.n_features_out == 9996
    # padded iff (dilation index + kernel index) is even
    np.testing.assert_array_equal(t["padded"], (t["dilation_index"] + t["kernel"]) % 2 == 0)
    assert t["kernel"][:30].tolist() == [0] * 30 and t["quantile_index"][:3].tolist() == [0, 1, 2]
