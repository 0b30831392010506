"""Heads trained out of core from a features store: exact ridge (LOO alpha) and a softmax/linear head.

Features are a (n_samples, n_features) Zarr, Dask or NumPy array read block by block along rows;
memory depends on the block size and the number of features, never on the number of rows.

Every head subclasses :class:`Head` (``base.py``): ``fit``, ``predict``, ``decision_function``, and for
prediction stores ``outputs``, ``output_layout`` and ``info``; ``save`` / ``load``. :func:`load_head` reads a
head file of any kind (registry ``HEAD_KINDS``).
"""

from .._lazy import attach

# imported on first use (rocketstream._lazy): a ridge head never loads torch through this package
__getattr__, __dir__, __all__ = attach(__name__, {
    "base": ["Head"],
    "checkpoint": ["CheckpointError", "load_checkpoint"],
    "choice": ["choose_head"],
    "io": ["HEAD_KINDS", "load_head"],
    "loader": ["ChunkShuffleLoader", "FeatureSource"],
    "moments": ["Moments", "feature_moments"],
    "plots": ["plot_history"],
    "ridge": ["DEFAULT_ALPHAS", "RidgeHead"],
    "softmax": ["SoftmaxHead", "train_softmax"],
    "softmax_update": ["update_softmax"],
})
