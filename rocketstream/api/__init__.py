"""Layer 4: user-facing names over the core: the sklearn-style estimator and the tsai-compatible modules.

The names are imported on first use (:mod:`rocketstream._lazy`): the out-of-core modules of this
package (``api.models``, ``api.predict``...) do not load torch through it."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "estimator": ["MiniRocketTransformer", "NotFittedError"],
    "tsai": ["MRF", "MiniRocket", "MiniRocketFeatures", "MiniRocketHead", "get_minirocket_features"],
})
