"""Exact ridge regression / classification with efficient leave-one-out alpha selection, out of core.

Equivalent to scikit-learn's ``make_pipeline(StandardScaler(with_mean=False), RidgeClassifierCV(alphas))``
(or ``RidgeCV``) with the default ``gcv_mode``, ``fit_intercept=True`` and ``scoring=None``, but the
features are streamed from a row-chunked store through Dask:

1. pass: per-feature mean and variance (float64, Chan's merge) and a NaN/Inf check.
2. pass: the centred, standardised second moments in float64, either the F x F covariance
   ``Z'Z`` (when n_samples > n_features) or the n x n Gram matrix ``ZZ'`` (otherwise), as scikit-learn
   chooses; ``Z = (X - mean) / scale``.
3. one eigendecomposition, then for every alpha the exact leave-one-out residuals
   ``looe = c / diag(G^-1)`` with the intercept correction (Rifkin & Lippert 2007); in covariance form
   these need one more streamed pass that projects each block on the eigenvectors.

The alpha with the smallest mean squared LOO residual wins (the first on ties). Memory is bounded by
O(F^2) plus a few blocks, independent of the number of rows.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from rocketstream.core import InputError
from rocketstream.graph.schedule import dask_scheduler

from .base import Head, Layout, check_task
from .loader import (
    SLICE_ROWS,
    FeatureSource,
    block_slices,
    default_workers,
    model_fingerprint,
    single_threaded_blas,
)
from .moments import chain_reduce, feature_moments
from .targets import as_label_array, as_targets, encode_classes

DEFAULT_ALPHAS = np.logspace(-3, 3, 10)


def _standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - mean) / scale


def _cov_step(acc: tuple | None, item: Any, y: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> tuple:
    """Fold one block into (Z'Z, Z'y, Z'1)."""
    for off, x in block_slices(item):
        z = _standardise(x, mean, scale)
        yb = y[off : off + z.shape[0]]
        part = (z.T @ z, z.T @ yb, z.sum(axis=0))
        acc = part if acc is None else _add(acc, part)
    return acc


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(u + v for u, v in zip(a, b, strict=True))
    return a + b


def _cov_loo_step(
    acc: np.ndarray | None,
    item: Any,
    y: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    eigvecs: np.ndarray,
    inv_eig: np.ndarray,
    vt_xty: np.ndarray,
    vt_xt1: np.ndarray,
    n_total: int,
) -> np.ndarray:
    """Sum of squared LOO residuals of one block, for every alpha (covariance form).

    With H = Z'Z + alpha I = V diag(1/D) V' and P = Z V:  alpha*c = y - P D V'Z'y,
    alpha*d = 1 - rowsum(P^2 D) - (1 - P D V'Z'1) / n;  looe = c / d.
    """
    out = np.zeros(inv_eig.shape[0]) if acc is None else acc.copy()
    for off, x in block_slices(item):
        p = _standardise(x, mean, scale) @ eigvecs
        yb = y[off : off + p.shape[0]]
        lev = (p * p) @ inv_eig.T  # (rows, n_alphas): diag(Z H^-1 Z')
        for a, d_inv in enumerate(inv_eig):
            alpha_c = yb - p @ (d_inv[:, None] * vt_xty)
            alpha_g1 = 1.0 - p @ (d_inv * vt_xt1)
            alpha_d = 1.0 - lev[:, a] - alpha_g1 / n_total
            out[a] += ((alpha_c / alpha_d[:, None]) ** 2).sum()
    return out


def _zt_c_step(acc: np.ndarray | None, item: Any, c: np.ndarray, mean: np.ndarray,
               scale: np.ndarray) -> np.ndarray:
    for off, x in block_slices(item):
        z = _standardise(x, mean, scale)
        part = z.T @ c[off : off + z.shape[0]]
        acc = part if acc is None else acc + part
    return acc


class RidgeHead(Head):
    """Ridge classifier / regressor trained out of core with leave-one-out choice of alpha.

    Parameters
    ----------
    alphas : array-like, default ``np.logspace(-3, 3, 10)``
        Candidate regularisation strengths (positive); the one with the smallest mean squared
        leave-one-out residual wins (the first on ties).
    task : {"classification", "regression"}, default "classification"
    mode : {"auto", "gram", "cov"}, default "auto"
        Gram (n x n) or covariance (F x F) form; auto picks Gram when n_samples <= n_features, as
        scikit-learn does.
    n_chains : int, optional
        Parallel accumulators; default: the scheduler's threads.

    Attributes
    ----------
    alpha_ : float
        The chosen alpha. ``best_score_`` is minus its mean squared LOO residual, ``cv_scores_`` those
        of every alpha.
    classes_ : numpy.ndarray or None
        Sorted class labels (classification), None for regression.
    coef_, intercept_ : numpy.ndarray, float
        For standardised features, like the ridge step of the scikit-learn pipeline.
    mean_, scale_ : numpy.ndarray
        The StandardScaler statistics.
    mode_ : str
        The form used ("gram" or "cov").
    n_features_in_, n_samples_ : int
    model_fingerprint_ : str or None
        The model whose features the head was trained on, where known: predictions refuse another model.
    """

    kind = "ridge"
    _fitted_attr = "coef_"

    def __init__(
        self,
        alphas: Any = DEFAULT_ALPHAS,
        task: str = "classification",
        mode: str = "auto",
        n_chains: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.task = task
        self.mode = mode
        self.n_chains = n_chains

    # ------------------------------------------------------------------ fit
    def fit(self, features: Any, labels: Any, model: Any = None) -> RidgeHead:
        """Fit in three streamed passes (moments, second moments, LOO residuals).

        Parameters
        ----------
        features : array-like
            (n_samples, n_features): a features store, xarray DataArray, Zarr, NumPy or Dask array.
        labels : array-like
            One class label (classification) or target (regression, 1-D or 2-D) per row.
        model : MiniRocketParameters, optional
            The model that made the features, when the features do not record it themselves (a
            features store and ``open_features`` do).

        Returns
        -------
        RidgeHead
            ``self``, fitted.

        Raises
        ------
        InputError
            Bad features or labels (shape, NaN/Inf, fewer than 2 classes or rows).
        ValueError
            A bad hyper-parameter.
        """
        check_task(self.task)
        if self.mode not in ("auto", "gram", "cov"):
            raise ValueError(f"mode must be 'auto', 'gram' or 'cov', got {self.mode!r}")
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not (alphas > 0).all():
            raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers, got {alphas}")
        source = FeatureSource(features)
        n, n_feat = source.shape
        labels = as_label_array(labels, n)
        self.model_fingerprint_ = model_fingerprint(source, model)
        if self.task == "classification":
            self.classes_, codes = encode_classes(labels)
            k = self.classes_.size
            y = -np.ones((n, k), dtype=np.float64)
            y[np.arange(n), codes] = 1.0
            if k == 2:
                y = y[:, 1:]
        else:
            self.classes_ = None
            y = as_targets(labels)
        if n < 2:
            raise InputError(f"ridge needs at least 2 training rows, got {n}")
        y_1d = y.ndim == 1
        y2 = y[:, None] if y_1d else y

        n_chains = self.n_chains or default_workers()
        moments = feature_moments(source, n_chains=n_chains)
        mean, scale = moments.mean, moments.scale()
        y_mean = y2.mean(axis=0)
        yc = y2 - y_mean
        mode = self.mode if self.mode != "auto" else ("gram" if n <= n_feat else "cov")

        blocks = source.block_items()
        bounds = [source.block(b) for b in range(len(blocks))]
        if mode == "cov":
            coef, scores = self._fit_cov(blocks, bounds, yc, mean, scale, alphas, n, n_chains)
        else:
            arr = source.to_dask()
            coef, scores = self._fit_gram(arr, blocks, bounds, yc, mean, scale, alphas, n, n_chains)
        best = 0
        for i in range(1, alphas.size):  # strict '>' keeps the first best alpha, like scikit-learn
            if scores[i] > scores[best]:
                best = i
        coef = coef[best]  # (F, T)
        self.alpha_ = float(alphas[best])
        self.best_score_ = float(scores[best])
        self.cv_scores_ = np.asarray(scores)
        self.mode_ = mode
        self.mean_, self.scale_ = mean, scale
        self.n_features_in_, self.n_samples_ = n_feat, n
        x_offset = mean / scale
        intercept = y_mean - x_offset @ coef
        if y_1d:
            self.coef_, self.intercept_ = coef[:, 0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef.T.copy(), intercept
        return self

    def _fit_cov(self, blocks, bounds, yc, mean, scale, alphas, n, n_chains):
        args = [(yc[a:b], mean, scale) for a, b in bounds]
        gram, zt_y, zt_1 = chain_reduce(blocks, _cov_step, _add, args, n_chains)
        eigvals, eigvecs = np.linalg.eigh(gram)
        del gram
        inv_eig = 1.0 / (eigvals[None, :] + alphas[:, None])  # (n_alphas, F)
        vt_xty, vt_xt1 = eigvecs.T @ zt_y, eigvecs.T @ zt_1
        args = [(yc[a:b], mean, scale, eigvecs, inv_eig, vt_xty, vt_xt1, n) for a, b in bounds]
        sq = chain_reduce(blocks, _cov_loo_step, _add, args, n_chains)
        scores = -sq / yc.size
        coefs = [eigvecs @ (d[:, None] * vt_xty) for d in inv_eig]
        return coefs, scores

    def _fit_gram(self, arr, blocks, bounds, yc, mean, scale, alphas, n, n_chains):
        z = (arr.astype(np.float64) - mean) / scale
        with single_threaded_blas():
            k = da.matmul(z, z.T).compute(scheduler=dask_scheduler())
        eigvals, q = np.linalg.eigh(k)
        del k
        qt_y, qt_1 = q.T @ yc, q.T @ np.ones(n)
        scores, cs = [], []
        for alpha in alphas:
            d_inv = 1.0 / (eigvals + alpha)
            c = q @ (d_inv[:, None] * qt_y)
            d = ((q * q) @ d_inv) - (q @ (d_inv * qt_1)) / n
            looe = c / d[:, None]
            scores.append(-np.mean(looe**2))
            cs.append(c)
        best = int(np.argmax(np.asarray(scores) == max(scores)))
        coefs: list[np.ndarray | None] = [None] * alphas.size
        args = [(cs[best][a:b], mean, scale) for a, b in bounds]
        coefs[best] = chain_reduce(blocks, _zt_c_step, _add, args, n_chains)
        return coefs, np.asarray(scores)

    # -------------------------------------------------------------- predict
    def decision_function(self, features: Any, device: Any = None) -> np.ndarray:
        """Decision values (classification) or predictions (regression), streamed block by block.

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : optional
            Ignored: ridge predicts with NumPy on the CPU (accepted for the common head interface).

        Returns
        -------
        numpy.ndarray
            float64, (n_samples,) for two classes or 1-D targets, else (n_samples, n_outputs).

        Raises
        ------
        InputError
            If the features have another number of columns than the head was fitted on.
        """
        self._check_fitted()
        source = FeatureSource(features)
        if source.n_features != self.n_features_in_:
            raise InputError(
                f"features have {source.n_features} columns but the head was fitted on {self.n_features_in_}"
            )
        coef = np.atleast_2d(self.coef_)  # (T, F)
        out = np.empty((source.n_samples, coef.shape[0]), dtype=np.float64)
        for b in range(source.n_blocks):
            start, stop = source.block(b)
            for a in range(start, stop, SLICE_ROWS):
                e = min(stop, a + SLICE_ROWS)
                out[a:e] = (source.read(a, e).astype(np.float64) / self.scale_) @ coef.T
        out += self.intercept_
        one_column = np.ndim(self.coef_) == 1 or (self.classes_ is not None and out.shape[1] == 1)
        return out[:, 0] if one_column else out  # two classes, 1-D targets; (n, 1) targets keep their shape

    def predict(self, features: Any, device: Any = None) -> np.ndarray:
        """Predicted class labels (classification) or target values (regression).

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : optional
            Ignored (see :meth:`decision_function`).

        Returns
        -------
        numpy.ndarray
            (n_samples,) labels, or float64 (n_samples[, n_targets]) values.
        """
        scores = self.decision_function(features)
        if self.classes_ is None:
            return scores
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.int64)]
        return self.classes_[scores.argmax(axis=1)]

    def _class_scores(self, features: Any, device: Any) -> tuple[str, np.ndarray]:
        return "decision", self.decision_function(features).astype(np.float64)

    def _score_layout(self, n: int, chunk: int, n_classes: int) -> Layout:
        if n_classes == 2:
            return {"decision": ((n,), (chunk,), "float64", ("sample",))}
        return {"decision": ((n, n_classes), (chunk, n_classes), "float64", ("sample", "class"))}

    def _n_targets(self) -> int | None:
        return None if np.ndim(self.coef_) == 1 else int(np.shape(self.coef_)[0])

    def _info_extra(self) -> dict[str, Any]:
        return {"alpha": float(self.alpha_)}

    # ------------------------------------------------------------------- io
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "task": self.task, "alpha": self.alpha_, "best_score": self.best_score_, "mode": self.mode_,
            "n_features": self.n_features_in_, "n_samples": self.n_samples_,
            "coef_1d": bool(np.ndim(self.coef_) == 1),
        }
        arrays = {
            "coef": np.asarray(self.coef_), "intercept": np.atleast_1d(self.intercept_),
            "mean": self.mean_, "scale": self.scale_, "alphas": np.asarray(self.alphas, dtype=np.float64),
            "cv_scores": self.cv_scores_,
        }
        if self.classes_ is not None:
            arrays["classes"] = self.classes_
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arr: dict[str, np.ndarray]) -> RidgeHead:
        head = cls(alphas=arr["alphas"], task=meta["task"], mode=meta["mode"])
        head.alpha_, head.best_score_, head.mode_ = meta["alpha"], meta["best_score"], meta["mode"]
        head.n_features_in_, head.n_samples_ = meta["n_features"], meta["n_samples"]
        head.coef_, head.mean_, head.scale_ = arr["coef"], arr["mean"], arr["scale"]
        head.cv_scores_ = arr["cv_scores"]
        head.intercept_ = float(arr["intercept"][0]) if meta["coef_1d"] else arr["intercept"]
        head.classes_ = arr.get("classes")
        return head
