"""Which head to train on MiniRocket features: exact ridge or the softmax / linear head (``--head auto``).

The published guidance, from the MiniRocket / ROCKET authors (Dempster, Schmidt and Webb; the README of
angus924/minirocket and angus924/rocket, and ``softmax.py`` there; minirocket-reference.md section 4):
ridge regression (``RidgeClassifierCV``) for smaller datasets, logistic / softmax regression trained
by minibatch gradient descent (Adam) for larger ones, from about 10,000 training examples up.

Adjusted by this project's measurements (benchmarks/head_choice.py, benchmarks/RESULTS.md, "Head
choice"; 2 shared CPU cores, 9,996 features, the synthetic demo set):

- below 10,000 series ridge is the more accurate head (0.2-0.6 points above the softmax defaults
  at 1,000-5,000 series) and still quick (8 s at 2,100 series, 26 s at 5,000), so it is chosen;
- from 10,000 series the softmax head is as accurate (0.9938 against 0.9912 at 10,000, 0.9970 against
  0.9966 at 20,000) while ridge's exact solve grows to minutes (245 s at 10,000, 454 s at 20,000;
  softmax: 10 s and 26 s). Ridge's cost is the second-moment pass and the eigendecomposition,
  about ``n * F * min(n, F)`` (Gram form when n <= F, covariance form otherwise:
  :mod:`~rocketstream.heads.ridge`); its memory is O(min(n, F)^2). So from 10,000 series ridge is
  still chosen when the features are few enough that this cost stays under
  :data:`RIDGE_COST_BUDGET`, what 5,000 series of 10,000 features cost (about half a minute here).

The same rule serves regression: the softmax head fits it too (mean squared error on standardised
targets, the same Adam recipe, early stopping from 10,000 rows).
"""

from __future__ import annotations

from .base import check_task

#: the authors' boundary: softmax from this many training examples up, ridge below
SOFTMAX_FROM_SAMPLES = 10_000
#: above it, ridge stays the choice while ``n * F * min(n, F)`` is at most this (5,000 x 10,000 x 5,000)
RIDGE_COST_BUDGET = 2.5e11

_CITATION = "Dempster et al.: ridge below about 10,000 training examples, softmax regression from there"


def ridge_cost(n_samples: int, n_features: int) -> float:
    """Ridge's work in multiply-adds, to a constant: ``n * F * min(n, F)``.

    Parameters
    ----------
    n_samples, n_features : int
        The training features' shape.

    Returns
    -------
    float
    """
    return float(n_samples) * float(n_features) * float(min(n_samples, n_features))


def choose_head(n_samples: int, n_features: int, task: str) -> tuple[str, str]:
    """The head kind for a training set, and why, in one line for the user.

    Ridge below 10,000 training series (the published guidance); from 10,000 series the softmax head,
    unless the features are so few that ridge's exact solve stays cheap (``n * F * min(n, F) <=``
    :data:`RIDGE_COST_BUDGET`). The module docstring gives the measurements behind the rule.

    Parameters
    ----------
    n_samples : int
        Training series (feature rows).
    n_features : int
        Features per series (9,996 for MiniRocket's default).
    task : {"classification", "regression"}

    Returns
    -------
    kind : str
        ``"ridge"`` or ``"softmax"``.
    reason : str
        One line: the kind, the numbers that decided it and the guidance followed.

    Raises
    ------
    ValueError
        A task other than "classification" or "regression", or fewer than one row or feature.

    Examples
    --------
    >>> choose_head(140, 9996, "classification")[0]
    'ridge'
    >>> choose_head(20_000, 9996, "classification")[0]
    'softmax'
    """
    check_task(task)
    n, f = int(n_samples), int(n_features)
    if n < 1 or f < 1:
        raise ValueError(f"need at least one training row and one feature, got {n} x {f}")
    if n < SOFTMAX_FROM_SAMPLES:
        return "ridge", f"ridge: {n:,} training series < {SOFTMAX_FROM_SAMPLES:,} ({_CITATION})"
    cost = ridge_cost(n, f)
    if cost <= RIDGE_COST_BUDGET:
        return "ridge", (f"ridge: {n:,} training series but only {f:,} features, so the exact ridge solve "
                         f"stays cheap (n*F*min(n,F) = {cost:.3g} <= {RIDGE_COST_BUDGET:.3g})")
    return "softmax", (f"softmax: {n:,} training series >= {SOFTMAX_FROM_SAMPLES:,} ({_CITATION}); exact "
                       f"ridge would cost n*F*min(n,F) = {cost:.3g} > {RIDGE_COST_BUDGET:.3g}")
