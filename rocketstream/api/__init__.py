"""Layer 4: user-facing names over the core: the sklearn-style estimator and the tsai-compatible modules."""

from .estimator import MiniRocketTransformer, NotFittedError
from .tsai import MRF, MiniRocket, MiniRocketFeatures, MiniRocketHead, get_minirocket_features

__all__ = [
    "MRF",
    "MiniRocket",
    "MiniRocketFeatures",
    "MiniRocketHead",
    "MiniRocketTransformer",
    "NotFittedError",
    "get_minirocket_features",
]
