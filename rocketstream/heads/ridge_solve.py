"""The covariance-form ridge solve without eigenvectors: a tridiagonal reduction and its reflectors.

The standardised ``G = Z'Z`` (F x F) is reduced in place to tridiagonal form ``G = Q T Q'`` by LAPACK
``dsytrd`` (``Q`` a product of Householder reflectors, kept where ``G`` was). Everything the exact
leave-one-out choice of alpha needs follows without the eigenvectors of ``T``:

- a row's projection ``p = Q'z``: the reflectors applied to a block of rows, ``panel`` at a time as
  ``I - V W V'`` (matrix products; :meth:`Tridiagonal.project`);
- its leverage ``p'(T + alpha I)^-1 p`` and fitted value ``p'(T + alpha I)^-1 Q'Z'y`` from one
  factorisation ``L D L'`` of the positive-definite tridiagonal ``T + alpha I`` per alpha (``dpttrf``):
  the leverage is a forward recurrence along ``p``, O(F) per row and alpha (:func:`leverages`);
- the coefficients ``Q (T + alpha I)^-1 Q'Z'y`` (:meth:`Tridiagonal.coefficients`).

This costs the reduction (4/3 F^3 flops) where a full eigendecomposition adds the eigenvectors of ``T``
and their back-transformation (about 3 F^3 more); the projection costs what the projection on the
eigenvectors did (2 F^2 per row). With one alpha kept (:func:`solve_kept_alpha`) a Cholesky
factorisation (F^3 / 3) replaces the reduction.

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

#: reflectors applied together (the inner dimension of the projection's matrix products)
PANEL = 384
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


class Tridiagonal:
    """``G = Q T Q'`` computed in place in the lower triangle of the column-major ``g`` (see the module
    docstring); ``g`` must stay unchanged while this object is used."""

    def __init__(self, g: np.ndarray, panel: int | None = None) -> None:
        f = g.shape[0]
        if not g.flags.f_contiguous:
            raise ValueError("the matrix must be column-major (Fortran order)")
        lwork = int(lapack.dsytrd_lwork(f, lower=1)[0])
        a, self.d, self.e, self.tau, info = lapack.dsytrd(g, lower=1, lwork=max(1, lwork), overwrite_a=1)
        _checked(info, "dsytrd")
        if not np.shares_memory(a, g):  # f2py copied: work on its copy
            g = a
        self.a, self.f = g, f
        panel = panel or PANEL
        self.panels = [(j, min(j + panel, f - 1)) for j in range(0, f - 1, panel)]
        self.w = [self._w_factor(*p) for p in self.panels]

    def _v(self, j0: int, j1: int) -> np.ndarray:
        """Reflectors ``j0 .. j1-1`` as the columns of ``V`` (unit lower trapezoidal, rows ``j0+1 ..``)."""
        v = np.array(self.a[j0 + 1 :, j0:j1], order="F")
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
            sub = z[:, j0 + 1 :]
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
            u[j0 + 1 :] -= v @ (w @ (v.T @ u[j0 + 1 :]))
        return u

    def factors(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """The ``L D L'`` factors of ``T + alpha I`` (``dpttrf``)."""
        if self.f == 1:  # (scipy's wrapper wants a non-empty subdiagonal)
            _checked(0 if self.d[0] + alpha > 0 else 1, "dpttrf")
            return self.d + alpha, self.e.copy()
        d, e, info = lapack.dpttrf(self.d + alpha, self.e)
        _checked(info, "dpttrf")
        return d, e


def tridiagonal_solve(factors: tuple[np.ndarray, np.ndarray], b: np.ndarray) -> np.ndarray:
    """``(T + alpha I)^-1 b`` for column-major ``b`` (F x k), given :meth:`Tridiagonal.factors`."""
    if factors[0].size == 1:
        return b / factors[0][0]
    x, info = lapack.dpttrs(factors[0], factors[1], b)
    _checked(info, "dpttrs")
    return x


def leverages(p: np.ndarray, factors: list[tuple[np.ndarray, np.ndarray]], block: int = 64) -> np.ndarray:
    """``p_i' (T + alpha I)^-1 p_i`` of every row ``p_i`` of the column-major ``p`` (rows x F), for every
    alpha: (n_alphas, rows).

    With ``T + alpha I = L D L'`` (:meth:`Tridiagonal.factors`) it is ``sum_k q_k^2 / D_k`` where
    ``L q = p_i``: one forward recurrence along the features, run for all rows and alphas at once
    (``block`` steps of ``q`` kept, then reduced).
    """
    rows, f = p.shape
    sub = np.stack([fac[1] for fac in factors], axis=1)[:, :, None]  # (F-1, n_alphas, 1): L's subdiagonal
    d_inv = 1.0 / np.stack([fac[0] for fac in factors], axis=1)  # (F, n_alphas)
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


def loo_squares(p: np.ndarray, yc: np.ndarray, factors: list[tuple[np.ndarray, np.ndarray]],
                fit_dirs: list[np.ndarray], n_total: int) -> np.ndarray:
    """Sum of squared leave-one-out residuals of some rows, for every alpha.

    ``p`` (rows x F, column-major): the rows' projections ``ZQ``; ``yc``: their centred targets; per
    alpha, the factors of ``T + alpha I`` and ``(T + alpha I)^-1 Q'Z'y``. With leverage ``h``
    (:func:`leverages`) and fitted value ``f``, a row's residual is ``(y - f) / (1 - h - 1/n)`` (the
    ``1/n``: the intercept).
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


__all__ = ["Tridiagonal", "blas_threads", "leverages", "loo_squares", "mirror_upper", "solve_kept_alpha",
           "standardised_upper", "tridiagonal_solve"]
