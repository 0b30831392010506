"""Out-of-core MiniRocket on Dask-chunked Zarr arrays with PyTorch transforms."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names resolved lazily so that ``import rocketstream`` stays light (no torch/dask/zarr).
_LAZY = {
    "MiniRocketTransformer": "rocketstream.api.estimator",
    "NotFittedError": "rocketstream.api.estimator",
    "MiniRocketFeatures": "rocketstream.api.tsai",
    "get_minirocket_features": "rocketstream.api.tsai",
    "MiniRocketHead": "rocketstream.api.tsai",
    "MiniRocket": "rocketstream.api.tsai",
    # the out-of-core verbs: model from a store, features store, head predictions, metrics, model files
    "fit": "rocketstream.api.outofcore",
    "transform_to_zarr": "rocketstream.api.outofcore",
    "open_features": "rocketstream.api.outofcore",
    "predict": "rocketstream.api.predict",
    "evaluate": "rocketstream.api.predict",
    "load_predictions": "rocketstream.api.predict",
    "follow_transform": "rocketstream.api.follow",
    "follow_predict": "rocketstream.api.follow",
    "load": "rocketstream.core",
    "save": "rocketstream.core",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rocketstream' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
