"""Exact ridge regression / classification with efficient leave-one-out alpha selection, out of core.

Equivalent to scikit-learn's ``make_pipeline(StandardScaler(with_mean=False), RidgeClassifierCV(alphas))``
(or ``RidgeCV``) with the default ``gcv_mode``, ``fit_intercept=True`` and ``scoring=None``, but the
features are streamed from a row-chunked store through Dask. Two forms, as scikit-learn chooses:

- covariance (n_samples > n_features): one pass accumulates the float64 sufficient statistics
  (count, mean, centred co-moments ``X'X`` and ``X'y``: :mod:`~rocketstream.heads.ridge_stats`), from
  which the standardised ``Z'Z`` (F x F) follows, ``Z = (X - mean) / scale``; its reduction to
  band form ``Q B Q'`` (:mod:`~rocketstream.heads.ridge_solve`); then one more pass applies ``Q``
  to each block for the exact leave-one-out residuals of every alpha, ``looe = c / diag(G^-1)`` with the
  intercept correction (Rifkin & Lippert 2007), from one banded Cholesky factorisation per alpha.
- Gram (otherwise): a moments pass, then the n x n ``ZZ'`` and its eigendecomposition.

The alpha with the smallest mean squared LOO residual wins (the first on ties). Memory: one F x F float64
matrix (the co-moments, in which the solve works) plus a few blocks per parallel chain (or O(n^2) in Gram
form), independent of the number of rows.

Updates (:meth:`RidgeHead.update`): the statistics are kept (``stats_``, saved beside the head file), so
rows appended to the features store are folded in by a pass over the new rows only; the coefficients
then equal those of a fit on all rows (to float64 rounding). Re-selecting alpha needs every row's
leverage, so it costs the band reduction and the LOO pass over all rows, as in a fit;
``reselect_alpha=False`` keeps alpha, reads only the new rows and solves one linear system (Cholesky). A
Gram-form head keeps no co-moments (its rows are no larger than they would be) and is refitted on all rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rocketstream.core import InputError

from .base import Head, Layout, check_task
from .folded import check_rows, rows_identity
from .loader import (
    SLICE_ROWS,
    FeatureSource,
    block_slices,
    default_workers,
    model_fingerprint,
)
from .moments import chain_reduce, feature_moments
from .ridge_solve import (
    BandReduction,
    band_width,
    blas_threads,
    loo_squares,
    solve_kept_alpha,
    standardised_upper,
)
from .ridge_stats import (
    RidgeStats,
    accumulate,
    merge,
    read_stats,
    stats_path,
    target_columns,
    window_items,
    write_stats,
)
from .serialize import head_file
from .targets import as_label_array

DEFAULT_ALPHAS = np.logspace(-3, 3, 10)
#: rows projected at a time in the leave-one-out pass (a few float64 copies of them per parallel chain)
LOO_ROWS = 768


def _standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - mean) / scale


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(u + v for u, v in zip(a, b, strict=True))
    return a + b


def _cov_loo_step(acc: np.ndarray | None, item: Any, yc: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                  tri: BandReduction, factors: list, fit_dirs: list[np.ndarray], n_total: int) -> np.ndarray:
    """Sum of squared LOO residuals of one block, for every alpha (covariance form, :func:`loo_squares`)."""
    out = np.zeros(len(factors)) if acc is None else acc.copy()
    for off, x in block_slices(item, LOO_ROWS):
        z = np.empty(x.shape, order="F")  # column-major: the reflectors act on column ranges
        np.subtract(x, mean, out=z)
        z /= scale
        p = tri.project(z)
        out += loo_squares(p, yc[off : off + p.shape[0]], factors, fit_dirs, n_total)
    return out


def _zt_c_step(acc: np.ndarray | None, item: Any, c: np.ndarray, mean: np.ndarray,
               scale: np.ndarray) -> np.ndarray:
    for off, x in block_slices(item):
        z = _standardise(x, mean, scale)
        part = z.T @ c[off : off + z.shape[0]]
        acc = part if acc is None else acc + part
    return acc


def _encoded(y_cols: np.ndarray, classification: bool) -> np.ndarray:
    """The columns ridge regresses on: +-1 class codes (one column for two classes), or the targets."""
    if not classification:
        return y_cols
    y = 2.0 * y_cols - 1.0
    return y[:, 1:] if y.shape[1] == 2 else y


#: features standardised at a time by the Gram form (float64 n x GRAM_PANEL)
GRAM_PANEL = 1024


def _gram(source: FeatureSource, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``z z'`` (n x n, float64) of the standardised features, summed over panels of features.

    The Gram form runs when there are more features than rows, so holding the float32 features
    (n x F, less than F x F) costs less than ``k`` itself does.
    """
    x = source.read(0, source.n_samples)
    k = np.zeros((len(x), len(x)))
    for a in range(0, x.shape[1], GRAM_PANEL):
        b = min(a + GRAM_PANEL, x.shape[1])
        z = (x[:, a:b].astype(np.float64) - mean[a:b]) / scale[a:b]
        k += z @ z.T
    return k


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
        scikit-learn does. Only the covariance form keeps statistics that :meth:`update` folds new
        rows into (a Gram-form head is refitted on all rows).
    n_chains : int, optional
        Parallel chains of the streamed passes, and BLAS threads of the covariance form's statistics
        pass and matrix factorisations; default: the scheduler's threads.

    Attributes
    ----------
    alpha_ : float
        The chosen alpha. ``best_score_`` is minus its mean squared LOO residual, ``cv_scores_`` those
        of every alpha (NaN after an update that kept alpha).
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
    stats_ : RidgeStats
        The sufficient statistics and the identity of the rows learned from (see :meth:`update`); kept
        beside the head file by :meth:`save`, read back by ``load(path, stats=True)``.
    rows_added_ : int
        Rows the last :meth:`update` folded in (after :meth:`fit`: all of them).
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

    def _checked_alphas(self) -> np.ndarray:
        check_task(self.task)
        if self.mode not in ("auto", "gram", "cov"):
            raise ValueError(f"mode must be 'auto', 'gram' or 'cov', got {self.mode!r}")
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not (alphas > 0).all():
            raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers, got {alphas}")
        return alphas

    # ------------------------------------------------------------------ fit
    def fit(self, features: Any, labels: Any, model: Any = None) -> RidgeHead:
        """Fit in two streamed passes (statistics, LOO residuals; Gram form: moments, Gram matrix).

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
        alphas = self._checked_alphas()
        source = FeatureSource(features)
        n, n_feat = source.shape
        labels = as_label_array(labels, n)
        made_by = model_fingerprint(source, model)
        y_cols, classes = target_columns(labels, self.task)
        if n < 2:
            raise InputError(f"ridge needs at least 2 training rows, got {n}")
        n_chains = self.n_chains or default_workers()
        mode = self.mode if self.mode != "auto" else ("gram" if n <= n_feat else "cov")
        target_1d = classes is None and labels.ndim == 1
        if mode == "cov":
            stats = accumulate(source, y_cols, 0, n, n_chains)
            stats.classes = classes
            self._solve(source, y_cols, stats, alphas, n_chains, target_1d)
        else:
            self._fit_gram(source, y_cols, classes, alphas, n_chains, target_1d)
            stats = RidgeStats(count=n, classes=classes)
        stats.identity = rows_identity(source, labels, n, made_by)
        self.stats_, self.model_fingerprint_, self.rows_added_ = stats, made_by, n
        return self

    def update(self, features: Any, labels: Any, model: Any = None, reselect_alpha: bool = True) -> RidgeHead:
        """Fold in the rows appended to the features since the head was trained (or last updated).

        ``features`` are the grown features: their first ``stats_.count`` rows must be the rows the head
        learned from (checked against ``stats_.identity`` without reading them: the store's chunk
        digests, the labels, the edge rows), the rest are new. One pass over the new rows updates the
        statistics; the coefficients then equal a fit on all rows to float64 rounding.

        Parameters
        ----------
        features : array-like
            (n_samples, n_features) features, as for :meth:`fit`.
        labels : array-like
            The labels (or targets) of every row, old and new.
        model : MiniRocketParameters or str, optional
            The model that made the features, when they do not record it.
        reselect_alpha : bool, default True
            Choose alpha again by leave-one-out over all rows: one more pass over every row (exact LOO
            residuals depend on each row's leverage under the new statistics). False keeps ``alpha_`` and
            reads only the new rows (``cv_scores_`` become NaN).

        Returns
        -------
        RidgeHead
            ``self``, updated (unchanged when there are no new rows); ``rows_added_`` says how many.

        Raises
        ------
        InputError
            No statistics (load the head with ``stats=True``), fewer rows than learned from, bad labels.
        IdentityMismatchError
            The leading rows, their labels or the model differ from those the head learned from.
        """
        self._check_fitted()
        stats: RidgeStats | None = getattr(self, "stats_", None)
        if stats is None:
            raise InputError("this ridge head carries no statistics to update: load it with "
                             "RidgeHead.load(path, stats=True) (they are kept beside the head file), or fit "
                             "it on all rows")
        alphas = self._checked_alphas()
        source = FeatureSource(features)
        n = source.n_samples
        labels = as_label_array(labels, n)
        made_by = model_fingerprint(source, model) or stats.identity.get("model_fingerprint")
        check_rows(stats.identity, source, labels, made_by)
        n_old = stats.count
        if n == n_old:
            self.rows_added_ = 0
            return self
        if not stats.has_moments:  # a Gram-form head: its rows are its statistics
            self.fit(features, labels, model=made_by)
            self.rows_added_ = n - n_old
            return self
        y_cols, classes = target_columns(labels, self.task)  # every class, old and new
        target_1d = classes is None and labels.ndim == 1
        learned_1d = np.ndim(self.coef_) == 1
        if classes is None and (y_cols.shape[1] != stats.xy.shape[1] or target_1d != learned_1d):
            learned = "()" if learned_1d else f"({stats.xy.shape[1]},)"
            raise InputError(f"the targets have shape {labels.shape[1:]} per row but the head learned "
                             f"targets of shape {learned}; pass the same kind of targets")
        n_chains = self.n_chains or default_workers()
        new = accumulate(source, y_cols[n_old:], n_old, n, n_chains)
        new.classes = classes
        merged = merge(stats if classes is None else stats.with_classes(classes), new, into=new)
        self._solve(source, y_cols, merged, alphas, n_chains, target_1d,
                    alpha=None if reselect_alpha else self.alpha_)
        merged.identity = rows_identity(source, labels, n, made_by)
        self.stats_, self.model_fingerprint_, self.rows_added_ = merged, made_by, n - n_old
        return self

    def _solve(self, source: FeatureSource, y_cols: np.ndarray, stats: RidgeStats, alphas: np.ndarray,
               n_chains: int, target_1d: bool, alpha: float | None = None) -> None:
        """Coefficients from the statistics of all rows; alpha by LOO over every row, or ``alpha``."""
        classification = stats.classes is not None
        y = _encoded(y_cols, classification)
        y_mean = y.mean(axis=0)
        zy = stats.xy
        if classification:  # the cross-moments of +-1 codes are twice those of the 0/1 indicators
            zy = 2.0 * (zy[:, 1:] if zy.shape[1] == 2 else zy)
        mean, scale = stats.mean, stats.scale()
        zty = zy / scale[:, None]
        n = stats.count
        if alpha is None:
            with standardised_upper(stats.comoment, scale) as g:  # G = Q B Q', in place
                with blas_threads(n_chains):
                    tri = BandReduction(g, kd=band_width(g.shape[0], n, alphas.size))
                qty = tri.project(np.array(zty.T, order="F")).T  # Q'Z'y
                factors = [tri.factors(a) for a in alphas]
                fit_dirs = [fac.solve(qty) for fac in factors]
                # blocks of whole storage chunks, at least LOO_ROWS rows: efficient matrix products
                blocks, bounds = window_items(FeatureSource(source, min_block_rows=LOO_ROWS), 0, n)
                yc = y - y_mean
                args = [(yc[a:b], mean, scale, tri, factors, fit_dirs, n) for a, b in bounds]
                scores = -chain_reduce(blocks, _cov_loo_step, _add, args, n_chains) / yc.size
                best = 0
                for i in range(1, alphas.size):  # strict '>' keeps the first best alpha, like scikit-learn
                    if scores[i] > scores[best]:
                        best = i
                coef = tri.coefficients(fit_dirs[best])
            alpha, best_score = float(alphas[best]), float(scores[best])
        else:
            with blas_threads(n_chains):
                coef = solve_kept_alpha(stats.comoment, scale, zty, alpha)
            scores, best_score = np.full(alphas.size, np.nan), float("nan")
        self._set_fitted(coef, alpha, best_score, scores, "cov", mean, scale, y_mean, n, target_1d,
                         stats.classes, source.n_features)

    def _set_fitted(self, coef: np.ndarray, alpha: float, best_score: float, scores: np.ndarray, mode: str,
                    mean: np.ndarray, scale: np.ndarray, y_mean: np.ndarray, n: int, target_1d: bool,
                    classes: np.ndarray | None, n_feat: int) -> None:
        self.alpha_, self.best_score_, self.cv_scores_ = float(alpha), float(best_score), np.asarray(scores)
        self.mode_ = mode
        self.classes_ = classes
        self.mean_, self.scale_ = mean, scale
        self.n_features_in_, self.n_samples_ = n_feat, n
        intercept = y_mean - (mean / scale) @ coef
        if target_1d:
            self.coef_, self.intercept_ = coef[:, 0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef.T.copy(), intercept

    def _fit_gram(self, source: FeatureSource, y_cols: np.ndarray, classes: np.ndarray | None,
                  alphas: np.ndarray, n_chains: int, target_1d: bool) -> None:
        n = source.n_samples
        moments = feature_moments(source, n_chains=n_chains)
        mean, scale = moments.mean, moments.scale()
        y = _encoded(y_cols, classes is not None)
        y_mean = y.mean(axis=0)
        yc = y - y_mean
        k = _gram(source, mean, scale)
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
        blocks = source.block_items()
        args = [(cs[best][a:b], mean, scale) for a, b in (source.block(i) for i in range(len(blocks)))]
        coef = chain_reduce(blocks, _zt_c_step, _add, args, n_chains)
        self._set_fitted(coef, alphas[best], scores[best], np.asarray(scores), "gram", mean, scale, y_mean, n,
                         target_1d, classes, source.n_features)

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
                z = source.read(a, e).astype(np.float64) / self.scale_
                # one vector-matrix product per row: a row's decision never depends on how many rows
                # share the call (BLAS picks other kernels for other shapes), so predictions are
                # bitwise the same whatever the chunking
                out[a:e] = np.matmul(z[:, None, :], coef.T)[:, 0, :]
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
    def save(self, path: str | os.PathLike, overwrite: bool = False, stats: bool = True) -> Path:
        """Write the head to an ``.npz`` file and, with ``stats``, its statistics beside it.

        Parameters
        ----------
        path : str or os.PathLike
            The head file; ``.npz`` is appended when missing.
        overwrite : bool, default False
            Replace an existing head (and statistics) file, never anything else.
        stats : bool, default True
            Also write ``stats_`` to ``<head>.stats.npz`` beside it, which :meth:`update` needs: F x F
            float64 as a packed triangle (about 4 F^2 bytes) for a covariance-form head, a few hundred
            bytes for a Gram-form one. With ``stats=False`` and ``overwrite``, an old statistics file beside
            ``path`` is removed: it belongs to the head being replaced.

        Returns
        -------
        pathlib.Path
            The head file written.

        Raises
        ------
        FileExistsError
            The head or statistics file exists and ``overwrite`` is False (nothing is written then).
        """
        keep = stats and getattr(self, "stats_", None) is not None
        if keep and not overwrite and stats_path(path).exists():
            raise FileExistsError(f"statistics file {stats_path(path)} already exists; pass --overwrite / "
                                  "overwrite=True to replace it")
        written = super().save(path, overwrite=overwrite)
        if keep:
            write_stats(stats_path(written), self.stats_, written, overwrite=True)
        elif overwrite and not stats:  # asked for none: the file beside is the replaced head's
            stats_path(written).unlink(missing_ok=True)
        return written

    @classmethod
    def load(cls, path: str | os.PathLike, stats: bool = False) -> RidgeHead:
        """Read a ridge head written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` head file.
        stats : bool, default False
            Also read the statistics beside it (``stats_``), to :meth:`update` the head.

        Returns
        -------
        RidgeHead

        Raises
        ------
        ModelFileError
            A damaged or edited head or statistics file, or statistics of another head.
        FileNotFoundError
            No head file, or (``stats``) no statistics beside it.
        """
        head = super().load(path)
        if stats:
            found = head_file(path)
            head.stats_ = read_stats(stats_path(found), found)
        return head

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "task": self.task, "alpha": self.alpha_, "best_score": self.best_score_, "mode": self.mode_,
            "mode_param": self.mode, "n_features": self.n_features_in_, "n_samples": self.n_samples_,
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
        head = cls(alphas=arr["alphas"], task=meta["task"], mode=meta.get("mode_param", "auto"))
        head.alpha_, head.best_score_, head.mode_ = meta["alpha"], meta["best_score"], meta["mode"]
        head.n_features_in_, head.n_samples_ = meta["n_features"], meta["n_samples"]
        head.coef_, head.mean_, head.scale_ = arr["coef"], arr["mean"], arr["scale"]
        head.cv_scores_ = arr["cv_scores"]
        head.intercept_ = float(arr["intercept"][0]) if meta["coef_1d"] else arr["intercept"]
        head.classes_ = arr.get("classes")
        return head
