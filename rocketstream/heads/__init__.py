"""Heads trained out of core from a features store: exact ridge (LOO alpha) and a softmax/linear head.

Features are a (n_samples, n_features) Zarr, Dask or NumPy array read block by block along rows;
memory depends on the block size and the number of features, never on the number of rows.
"""

from .checkpoint import CheckpointError, load_checkpoint
from .loader import ChunkShuffleLoader, FeatureSource
from .moments import Moments, feature_moments
from .plots import plot_history
from .ridge import DEFAULT_ALPHAS, RidgeHead
from .softmax import SoftmaxHead, train_softmax

__all__ = [
    "DEFAULT_ALPHAS",
    "CheckpointError",
    "ChunkShuffleLoader",
    "FeatureSource",
    "Moments",
    "RidgeHead",
    "SoftmaxHead",
    "feature_moments",
    "load_checkpoint",
    "plot_history",
    "train_softmax",
]
