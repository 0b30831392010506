"""The covariance-form ridge solve without eigenvectors: a band reduction and its reflectors.

The standardised ``G = Z'Z`` (F x F) is reduced in place to a band ``G = Q B Q'`` (half-width ``kd``,
64 by default) by LAPACK ``dsytrd_sy2sb`` (:mod:`.band_lapack`; ``Q`` a product of Householder reflectors,
kept where ``G`` was), or to tridiagonal form by ``dsytrd`` where that routine cannot be found. Everything
the exact leave-one-out choice of alpha needs follows without eigenvectors:

- a row's projection ``p = Q'z``: the reflectors applied to a block of rows, ``panel`` at a time as
  ``I - V W V'`` (matrix products; :meth:`BandReduction.project`);
- its leverage ``p'(B + alpha I)^-1 p`` and fitted value ``p'(B + alpha I)^-1 Q'Z'y`` from one banded
  Cholesky factorisation ``L L'`` of ``B + alpha I`` per alpha (``dpbtrf``): the leverage is ``|L^-1 p|^2``,
  a blocked triangular solve along the features, O(F kd) per row and alpha (:class:`BandCholesky`);
- the coefficients ``Q (B + alpha I)^-1 Q'Z'y`` (:meth:`BandReduction.coefficients`).

The band reduction costs 4/3 F^3 flops like ``dsytrd`` but in matrix-matrix products, where half of
``dsytrd``'s are matrix-vector products bound by memory bandwidth (at F = 10,000 on two cores: 16-19 s
against 46-60 s). A full eigendecomposition would add the eigenvectors and their back-transformation
(about 3 F^3 more); the projection costs what the projection on the eigenvectors did (2 F^2 per row).
With one alpha kept (:func:`solve_kept_alpha`) a Cholesky factorisation (F^3 / 3) replaces the reduction.

Memory: the statistics' co-moment matrix ``C`` is the only F x F array. :func:`standardised_upper`
writes ``G`` (plus ``shift`` on its diagonal) over the upper triangle of ``C`` (row-major), where LAPACK
works on it (the lower triangle of the column-major view), and puts ``C`` back from the untouched lower
triangle and a copy of the diagonal afterwards, bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from scipy.linalg import blas, lapack

from rocketstream.core import InputError

from .band_lapack import band_reduction

#: reflectors applied together (the inner dimension of the projection's matrix products)
PANEL = 384
#: half-width of the band ``G`` is reduced to
BAND = 64
#: :func:`band_width`'s weight: at 12000 x 9996 on two cores the band saved 31.7 s in the reduction
#: and cost 4.0 s more in the leverages (10 alphas), a ratio of about 1.6 in the units of its rule
BAND_BREAK_EVEN = 1.6
#: features per step of the leverages' blocked triangular solve (at least the band's half-width)
SOLVE_BLOCK = 64
#: rows of the F x F matrix handled at a time when copying or scaling a triangle
_ROWS = 256


def mirror_upper(m: np.ndarray, from_lower: bool = True) -> None:
    """Make the square C-ordered ``m`` symmetric by copying its strict lower triangle onto the upper one
    (``from_lower``) or the other way round, in row blocks (no F x F temporary)."""
    f = m.shape[0]
    for a in range(0, f, _ROWS):
        b = min(f, a + _ROWS)
        blk = m[a:b, a:b]
        iu = np.triu_indices(b - a, 1)
        if from_lower:
            m[a:b, b:] = m[b:, a:b].T
            blk[iu] = blk.T[iu]
        else:
            m[b:, a:b] = m[a:b, b:].T
            blk.T[iu] = blk[iu]


@contextmanager
def standardised_upper(c: np.ndarray, scale: np.ndarray, shift: float = 0.0) -> Iterator[np.ndarray]:
    """Lend the upper triangle of the symmetric C-ordered co-moments ``c`` as ``G + shift I``.

    Yields the column-major view ``c.T``, whose lower triangle is ``G + shift I`` with
    ``G = C / (scale scale')``, for LAPACK to overwrite; ``c`` is restored on exit (from its lower triangle
    and diagonal, which LAPACK's lower-triangle routines on the view leave untouched).
    """
    if not c.flags.c_contiguous or c.dtype != np.float64:
        raise ValueError("the co-moment matrix must be a C-ordered float64 array")
    f = c.shape[0]
    diag = np.diagonal(c).copy()
    try:
        for a in range(0, f, _ROWS):
            b = min(f, a + _ROWS)
            c[a:b, b:] /= scale[a:b, None]
            c[a:b, b:] /= scale[None, b:]
            blk = c[a:b, a:b]
            i, j = np.triu_indices(b - a)
            blk[i, j] = blk[i, j] / scale[a + i] / scale[a + j]
        c.flat[:: f + 1] += shift
        yield c.T
    finally:
        mirror_upper(c, from_lower=True)
        np.fill_diagonal(c, diag)


def blas_threads(n: int) -> contextlib.AbstractContextManager:
    """At most ``n`` BLAS threads inside the block (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _checked(info: int, what: str) -> None:
    if info < 0:
        raise RuntimeError(f"LAPACK {what}: illegal argument {-info}")
    if info > 0:
        raise InputError(f"the ridge system is not numerically positive definite ({what} failed at step "
                         f"{info}); use larger alphas")


class BandReduction:
    """``G = Q B Q'`` computed in place in the lower triangle of the column-major ``g``, ``B`` banded with
    half-width ``kd`` (see the module docstring); ``g`` must stay unchanged while this object is used.

    ``dsytrd_sy2sb`` (:mod:`.band_lapack`) makes the band when it is available, else (or when ``kd`` is
    1) ``dsytrd`` makes a tridiagonal ``B``.
    """

    def __init__(self, g: np.ndarray, panel: int | None = None, kd: int | None = None) -> None:
        f = g.shape[0]
        if not g.flags.f_contiguous:
            raise ValueError("the matrix must be column-major (Fortran order)")
        kd = min(kd or BAND, max(1, f - 1))
        band = None if kd == 1 else band_reduction(g, kd)
        if band is None:
            kd = 1
            lwork = int(lapack.dsytrd_lwork(f, lower=1)[0])
            a, d, e, tau, info = lapack.dsytrd(g, lower=1, lwork=max(1, lwork), overwrite_a=1)
            _checked(info, "dsytrd")
            if not np.shares_memory(a, g):  # f2py copied: work on its copy
                g = a
            band = np.zeros((2, f), order="F")
            band[0], band[1, : f - 1] = d, e
            tau = tau[: f - 1]
        else:
            band, tau = band
        self.a, self.f, self.kd, self.band, self.tau = g, f, kd, band, tau
        panel = panel or PANEL
        n_refl = tau.size  # reflector j acts on rows j + kd ..
        self.panels = [(j, min(j + panel, n_refl)) for j in range(0, n_refl, panel)]
        self.w = [self._w_factor(*p) for p in self.panels]

    def _v(self, j0: int, j1: int) -> np.ndarray:
        """Reflectors ``j0 .. j1-1`` as the columns of ``V`` (unit lower trapezoidal, rows ``j0+kd ..``)."""
        v = np.array(self.a[j0 + self.kd :, j0:j1], order="F")
        k = j1 - j0
        v[:k, :k] = np.tril(v[:k, :k], -1) + np.eye(k)
        return v

    def _w_factor(self, j0: int, j1: int) -> np.ndarray:
        """Upper triangular ``W`` with ``H(j0) ... H(j1-1) = I - V W V'`` (LAPACK's forward ``dlarft``)."""
        v, tau = self._v(j0, j1), self.tau[j0:j1]
        vtv = v.T @ v
        w = np.zeros((j1 - j0, j1 - j0))
        for i in range(j1 - j0):
            w[:i, i] = -tau[i] * (w[:i, :i] @ vtv[:i, i])
            w[i, i] = tau[i]
        return w

    def project(self, z: np.ndarray) -> np.ndarray:
        """``Z Q`` for a column-major block of rows ``z`` (n x F), computed in place and returned."""
        if not z.flags.f_contiguous:
            raise ValueError("the rows must be a column-major (Fortran order) array")
        for (j0, j1), w in zip(self.panels, self.w, strict=True):
            v = self._v(j0, j1)
            sub = z[:, j0 + self.kd :]
            y = (sub @ v) @ w
            out = blas.dgemm(-1.0, y, v, beta=1.0, c=sub, trans_b=1, overwrite_c=1)
            if not np.shares_memory(out, sub):
                sub[...] = out
        return z

    def coefficients(self, u: np.ndarray) -> np.ndarray:
        """``Q u`` for ``u`` (F x T)."""
        u = np.array(u, dtype=np.float64)
        for (j0, j1), w in zip(reversed(self.panels), reversed(self.w), strict=True):
            v = self._v(j0, j1)
            u[j0 + self.kd :] -= v @ (w @ (v.T @ u[j0 + self.kd :]))
        return u

    def factors(self, alpha: float) -> BandCholesky:
        """The Cholesky factor of ``B + alpha I``."""
        return BandCholesky(self.band, alpha)


def _dense(band: np.ndarray, r0: int, c0: int, rows: int, cols: int) -> np.ndarray:
    """``L[r0:r0+rows, c0:c0+cols]`` (column-major) of ``L`` in lower band storage (``L[r, c] =
    band[r - c, c]``); zero outside the band and past the last row."""
    kd, f = band.shape[0] - 1, band.shape[1]
    r = np.arange(r0, r0 + rows)[:, None]
    c = np.arange(c0, c0 + cols)[None, :]
    d = r - c
    inside = (d >= 0) & (d <= kd) & (r < f)
    return np.asfortranarray(np.where(inside, band[np.clip(d, 0, kd), np.minimum(c, f - 1)], 0.0))


class BandCholesky:
    """``B + alpha I = L L'`` for the band ``B`` in lower band storage (``dpbtrf``), with ``L``'s diagonal
    blocks and the blocks below them laid out for blocked triangular solves along the features."""

    def __init__(self, band: np.ndarray, alpha: float) -> None:
        kd, f = band.shape[0] - 1, band.shape[1]
        ab = np.array(band, order="F")
        ab[0] += alpha
        self.l, info = lapack.dpbtrf(ab, lower=1)
        _checked(info, "dpbtrf")
        self.kd, self.f = kd, f
        self.step = max(kd, SOLVE_BLOCK)
        self.diag: list[np.ndarray] = []  # L[j0:j1, j0:j1], lower triangular
        self.below: list[np.ndarray] = []  # L[j0:j0+kd, j0-kd:j0], upper triangular (rows past F zero)
        for j0 in range(0, f, self.step) if kd > 1 else ():  # (tridiagonal: the recurrence needs none)
            j1 = min(f, j0 + self.step)
            self.diag.append(_dense(self.l, j0, j0, j1 - j0, j1 - j0))
            if j0:
                self.below.append(_dense(self.l, j0, j0 - kd, kd, kd))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``(B + alpha I)^-1 b`` for ``b`` (F x k)."""
        x, info = lapack.dpbtrs(self.l, np.asfortranarray(b), lower=1)
        _checked(info, "dpbtrs")
        return x

    def leverages(self, p: np.ndarray) -> np.ndarray:
        """``p_i' (B + alpha I)^-1 p_i = |L^-1 p_i|^2`` of every row of the column-major ``p`` (rows x F):
        ``Y L' = P`` solved a block of features at a time (a matrix product for the band below the
        diagonal block, a triangular solve for the block), the squares summed as it goes; a tridiagonal
        ``B`` by :func:`leverages`' recurrence."""
        if self.kd == 1:
            return leverages(p, [self])[0]
        out = np.zeros(p.shape[0])
        prev = None
        for i, j0 in enumerate(range(0, self.f, self.step)):
            j1 = min(self.f, j0 + self.step)
            y = np.array(p[:, j0:j1], order="F")
            if prev is not None:  # minus Y[:, j0-kd:j0] times the upper triangle below L's diagonal block
                cpl = self.below[i - 1]
                m = min(self.kd, j1 - j0)
                y[:, :m] -= blas.dtrmm(1.0, cpl, prev[:, -self.kd :], side=1, trans_a=1, overwrite_b=1)[:, :m]
            y = blas.dtrsm(1.0, self.diag[i], y, side=1, lower=1, trans_a=1, overwrite_b=1)
            out += np.einsum("ij,ij->i", y, y)
            prev = y
        return out


def band_width(f: int, rows: int, n_alphas: int) -> int:
    """The band half-width worth reducing ``G`` (F x F) to for ``rows`` rows and ``n_alphas`` alphas:
    :data:`BAND`, or 1 (tridiagonal) where the band's leverages (about ``3 rows F kd`` flops per alpha in
    small matrix products) would cost more than the band reduction saves over ``dsytrd`` (a share of
    ``F^3`` that is bound by memory bandwidth); :data:`BAND_BREAK_EVEN` weighs the two."""
    return BAND if f * f >= BAND_BREAK_EVEN * rows * BAND * n_alphas else 1


def leverages(p: np.ndarray, factors: list[BandCholesky], block: int = 64) -> np.ndarray:
    """``p_i' (B + alpha I)^-1 p_i`` of every row of the column-major ``p`` (rows x F), for every alpha:
    (n_alphas, rows).

    A band wider than 1: :meth:`BandCholesky.leverages` per alpha. A tridiagonal ``B + alpha I = L D L'``
    (``L`` unit bidiagonal): ``sum_k q_k^2 / D_k`` where ``L q = p_i``, one forward recurrence along the
    features for all rows and alphas at once (``block`` steps of ``q`` kept, then reduced).
    """
    if factors[0].kd > 1:
        return np.stack([fac.leverages(p) for fac in factors])
    rows, f = p.shape
    diag = np.stack([fac.l[0] for fac in factors], axis=1)  # (F, n_alphas): the Cholesky factor's diagonal
    sub = (np.stack([fac.l[1, : f - 1] for fac in factors], axis=1) / diag[: f - 1])[:, :, None]
    d_inv = 1.0 / diag**2
    q = np.empty((block, len(factors), rows))
    out = np.zeros((len(factors), rows))
    prev = None
    for k0 in range(0, f, block):
        k1 = min(f, k0 + block)
        for k in range(k0, k1):
            cur = q[k - k0]
            if prev is None:
                cur[...] = p[:, k]
            else:
                np.multiply(sub[k - 1], prev, out=cur)
                np.subtract(p[:, k], cur, out=cur)
            prev = cur
        done = q[: k1 - k0]
        prev = done[-1].copy()
        np.square(done, out=done)
        out += np.einsum("kar,ka->ar", done, d_inv[k0:k1])
    return out


def loo_squares(p: np.ndarray, yc: np.ndarray, factors: list[BandCholesky], fit_dirs: list[np.ndarray],
                n_total: int) -> np.ndarray:
    """Sum of squared leave-one-out residuals of some rows, for every alpha.

    ``p`` (rows x F, column-major): the rows' projections ``ZQ``; ``yc``: their centred targets; per
    alpha, the factor of ``B + alpha I`` and ``(B + alpha I)^-1 Q'Z'y``. With leverage ``h``
    (:func:`leverages`) and fitted value ``f``, a row's residual is ``(y - f) / (1 - h - 1/n)``
    (the ``1/n``: the intercept).
    """
    lev = leverages(p, factors)
    out = np.zeros(len(factors))
    for a, u in enumerate(fit_dirs):
        resid = yc - p @ u
        resid /= (1.0 - lev[a] - 1.0 / n_total)[:, None]
        out[a] = np.einsum("ij,ij->", resid, resid)
    return out


def solve_kept_alpha(c: np.ndarray, scale: np.ndarray, zty: np.ndarray, alpha: float) -> np.ndarray:
    """``(G + alpha I)^-1 Z'y`` by a Cholesky factorisation in the upper triangle of ``c`` (restored)."""
    with standardised_upper(c, scale, alpha) as g:
        chol, info = lapack.dpotrf(g, lower=1, clean=0, overwrite_a=1)
        _checked(info, "dpotrf")
        x, info = lapack.dpotrs(chol, zty, lower=1)
        _checked(info, "dpotrs")
    return x


__all__ = ["BandCholesky", "BandReduction", "band_width", "blas_threads", "leverages", "loo_squares",
           "mirror_upper", "solve_kept_alpha", "standardised_upper"]
