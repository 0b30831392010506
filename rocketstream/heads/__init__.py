"""Heads trained out of core from a features store: exact ridge (LOO alpha) and a softmax/linear head.

Features are a (n_samples, n_features) Zarr, Dask or NumPy array read block by block along rows;
memory depends on the block size and the number of features, never on the number of rows.

Every head subclasses :class:`Head` (``base.py``): ``fit``, ``predict``, ``decision_function``, and for
prediction stores ``outputs``, ``output_layout`` and ``info``; ``save`` / ``load``. :func:`load_head` reads a
head file of any kind (registry ``HEAD_KINDS``).
"""

from .base import Head
from .checkpoint import CheckpointError, load_checkpoint
from .io import HEAD_KINDS, load_head
from .loader import ChunkShuffleLoader, FeatureSource
from .moments import Moments, feature_moments
from .plots import plot_history
from .ridge import DEFAULT_ALPHAS, RidgeHead
from .softmax import SoftmaxHead, train_softmax

__all__ = [
    "DEFAULT_ALPHAS",
    "HEAD_KINDS",
    "CheckpointError",
    "ChunkShuffleLoader",
    "FeatureSource",
    "Head",
    "Moments",
    "RidgeHead",
    "SoftmaxHead",
    "feature_moments",
    "load_checkpoint",
    "load_head",
    "plot_history",
    "train_softmax",
]
