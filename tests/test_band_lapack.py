"""The band reduction called from SciPy's LAPACK (rocketstream.heads.band_lapack) and its use by ridge."""

from __future__ import annotations

import numpy as np
import pytest

from rocketstream.heads.band_lapack import band_reduction
from rocketstream.heads.ridge_solve import BAND, BandReduction, band_width, leverages


def band_to_dense(ab: np.ndarray) -> np.ndarray:
    kd, n = ab.shape[0] - 1, ab.shape[1]
    b = np.zeros((n, n))
    for d in range(min(kd, n - 1) + 1):
        i = np.arange(n - d)
        b[i + d, i] = b[i, i + d] = ab[d, : n - d]
    return b


def symmetric(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n + 5, n))
    return x.T @ x


@pytest.mark.parametrize(("n", "kd"), [(200, 64), (130, 7), (40, 64)])
def test_band_reduction_is_an_orthogonal_similarity(n, kd):
    """Q B Q' gives the matrix back, B has the asked half-width, and the upper triangle is left alone."""
    sym = symmetric(n)
    a = np.asfortranarray(sym.copy())
    a[np.triu_indices(n, 1)] = np.arange(n * (n - 1) // 2)  # a marker LAPACK must not touch
    marker = np.triu(a, 1).copy()
    out = band_reduction(a, kd)
    assert out is not None, "dsytrd_sy2sb not found in SciPy's LAPACK: the ridge head falls back to dsytrd"
    ab, tau = out
    assert ab.shape == (kd + 1, n) and tau.shape == (max(0, n - kd),)
    assert np.array_equal(np.triu(a, 1), marker)
    q = np.eye(n)
    for i in range(tau.size):
        v = np.zeros(n)
        v[i + kd] = 1.0
        v[i + kd + 1 :] = a[i + kd + 1 :, i]
        q -= tau[i] * np.outer(q @ v, v)
    np.testing.assert_allclose(q.T @ q, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(q @ band_to_dense(ab) @ q.T, sym, rtol=0, atol=1e-11 * np.abs(sym).max())


def test_band_reduction_refuses_a_row_major_matrix():
    with pytest.raises(ValueError, match="column-major"):
        band_reduction(np.ascontiguousarray(symmetric(10)), 3)


@pytest.mark.parametrize("kd", [None, 5, 1])
def test_leverages_and_solves_equal_the_dense_ones(kd):
    """Projection, leverages |L^-1 p|^2, solves and coefficients of BandReduction against dense algebra."""
    n, alpha = 150, 0.3
    g = symmetric(n, seed=1)
    red = BandReduction(np.asfortranarray(g.copy()), panel=32, kd=kd)
    assert red.kd == (kd or 64)
    rows = np.random.default_rng(2).standard_normal((37, n))
    inv = np.linalg.inv(g + alpha * np.eye(n))
    fac = red.factors(alpha)
    p = red.project(np.asfortranarray(rows.copy()))
    lev = np.einsum("ij,jk,ik->i", rows, inv, rows)
    np.testing.assert_allclose(fac.leverages(p), lev, rtol=1e-10)
    second = red.factors(3.0)  # the path of every alpha at once (a recurrence when tridiagonal)
    lev3 = np.einsum("ij,jk,ik->i", rows, np.linalg.inv(g + 3.0 * np.eye(n)), rows)
    np.testing.assert_allclose(leverages(p, [fac, second], block=16), np.stack([lev, lev3]), rtol=1e-10)
    b = np.random.default_rng(3).standard_normal((n, 2))
    qtb = red.project(np.asfortranarray(b.T.copy())).T  # Q'b
    np.testing.assert_allclose(red.coefficients(fac.solve(qtb)), inv @ b, rtol=1e-9, atol=1e-12)


def test_band_width_weighs_the_reduction_against_the_leverages():
    assert band_width(9996, 12000, 10) == BAND  # the size: the band
    assert band_width(3000, 12000, 10) == 1  # small F: dsytrd is quick, the recurrence cheaper
    assert band_width(9996, 200_000, 10) == 1  # many rows: the band's leverages would cost more


def test_the_call_suits_32_and_64_bit_integer_lapacks():
    """Integer arguments are passed so that LP64 and ILP64 builds both read them: NumPy's wheel bundles an
    ILP64 OpenBLAS (symbols suffixed 64_), SciPy's an LP64 one; the routine works from either."""
    import ctypes
    import glob
    import os

    from rocketstream.heads import band_lapack

    assert band_lapack._routine() is not None
    site = os.path.dirname(os.path.dirname(np.__file__))
    libs = glob.glob(os.path.join(site, "numpy.libs", "*openblas64*"))
    if not libs:
        pytest.skip("this NumPy bundles no ILP64 OpenBLAS")
    fn = getattr(ctypes.CDLL(libs[0]), "scipy_dsytrd_sy2sb_64_", None)
    if fn is None:
        pytest.skip("NumPy's OpenBLAS does not export dsytrd_sy2sb")
    fn.restype = None
    assert band_lapack._works(fn)


def test_without_the_routine_the_reduction_is_tridiagonal(monkeypatch):
    """Where no LAPACK exports dsytrd_sy2sb (or none passes the check), dsytrd does the reduction."""
    from rocketstream.heads import band_lapack

    monkeypatch.setattr(band_lapack, "_routine", lambda: None)
    n, alpha = 90, 0.7
    g = symmetric(n, seed=4)
    red = BandReduction(np.asfortranarray(g.copy()), kd=16)
    assert red.kd == 1 and red.band.shape == (2, n)
    rows = np.random.default_rng(5).standard_normal((9, n))
    lev = np.einsum("ij,jk,ik->i", rows, np.linalg.inv(g + alpha * np.eye(n)), rows)
    np.testing.assert_allclose(red.factors(alpha).leverages(red.project(np.asfortranarray(rows.copy()))), lev,
                               rtol=1e-10)
