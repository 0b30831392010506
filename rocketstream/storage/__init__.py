"""Layer 2: Zarr I/O. Open inputs (local path or fsspec URL), create feature stores with chunk-done
markers, and enforce the overwrite and resume rules.

The names below are imported on first use (:mod:`rocketstream._lazy`): a command that only needs
``storage.locations`` or ``storage.outputs`` does not load Zarr through this package."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "features": ["FEATURES", "MARKERS", "STORE_FORMAT", "FeatureStore"],
    "zarrstore": ["describe_group", "is_url", "open_input_array"],
})
