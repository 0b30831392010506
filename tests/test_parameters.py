import numpy as np
import pytest

from rocketstream.core import (
    dilation_tables,
    fit_dilations,
    from_dict,
    plan,
    quantile_levels,
    resolve_seed,
    to_dict,
)

# (length, dilations tail, features per dilation) from the reference's worked table: only lengths whose
# table is the same on every platform (see test_platform_dependent_lengths_are_named)
TABLE = [
    (9, [1], [119]),
    (24, [1, 2], [79, 40]),
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
    assert len(dilation_tables(length)) == 1, "a platform-dependent length cannot be hard-coded"
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


# where (L - 1) / 8 is an integer that is not a power of two, 2**log2((L-1)/8) truncates to (L-1)/8 or
# one less depending on the platform's pow (2.9999999999999996 for L=25 on an AMD EPYC with AVX-512)
PLATFORM_DEPENDENT = [8 * m + 1 for m in range(3, 38) if m & (m - 1)]


def test_platform_dependent_lengths_are_named():
    assert [n for n in range(9, 300) if len(dilation_tables(n)) > 1] == PLATFORM_DEPENDENT
    assert PLATFORM_DEPENDENT[:4] == [25, 41, 49, 57]


@pytest.mark.parametrize("length", PLATFORM_DEPENDENT[:6])
def test_platform_dependent_lengths_match_aeon_here(length):
    """On the machine that runs the test: ours equals aeon's, and is one of the possible tables."""
    from aeon.transformations.collection.convolution_based._minirocket import _fit_dilations

    d_ref, n_ref = _fit_dilations(length, 10_000, 32)
    d, n = fit_dilations(length)
    assert d.tolist() == d_ref.tolist() and n.tolist() == n_ref.tolist()
    tables = [(a.tolist(), b.tolist()) for a, b in dilation_tables(length)]
    assert (d.tolist(), n.tolist()) in tables
    if length == 25:
        assert sorted(tables) == [([1, 2], [75, 44]), ([1, 2, 3], [75, 41, 3])]


def test_model_from_another_platform_loads():
    """A length-25 model fitted where pow gives the other table still loads (its dilations are kept)."""
    from dataclasses import replace

    p = plan(10, 1, 25, random_state=0)
    here = fit_dilations(25)
    other = next(t for t in dilation_tables(25) if not np.array_equal(t[0], here[0]))
    other_plan = plan(10, 1, 25, random_state=0)
    n_comb = 84 * len(other[0])
    rng = np.random.RandomState(0)
    moved = replace(other_plan, dilations=other[0], features_per_dilation=other[1],
                    channels_per_combination=np.ones(n_comb, np.int32),
                    channel_indices=np.zeros(n_comb, np.int32),
                    example_indices=rng.randint(10, size=n_comb).astype(np.int64),
                    biases=np.zeros(p.n_features_out, np.float32))
    back = from_dict(to_dict(moved))
    assert back.dilations.tolist() == other[0].tolist()
    edited = replace(moved, dilations=np.array([1, 4], np.int32), features_per_dilation=np.array([75, 44],
                                                                                                 np.int32))
    with pytest.raises(ValueError, match="dilations do not follow"):
        from_dict(to_dict(edited))


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
