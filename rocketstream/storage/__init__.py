"""Layer 2: Zarr I/O. Open inputs (local path or fsspec URL), create feature stores with chunk-done
markers, and enforce the overwrite and resume rules."""

from .features import FEATURES, MARKERS, STORE_FORMAT, FeatureStore
from .zarrstore import describe_group, is_url, open_input_array

__all__ = [
    "FEATURES",
    "MARKERS",
    "STORE_FORMAT",
    "FeatureStore",
    "describe_group",
    "is_url",
    "open_input_array",
]
