"""Layer 3: Dask graphs. Fit from the drawn rows only, and per-chunk transforms written to Zarr
with done markers and resume. Works with any Dask scheduler."""

from .fit import RowGatherer, fit_array, gather_rows
from .schedule import compute
from .source import as_dask_array, default_chunk_size
from .transform import plan_for, transform_array, write_features

__all__ = [
    "RowGatherer",
    "as_dask_array",
    "compute",
    "default_chunk_size",
    "fit_array",
    "gather_rows",
    "plan_for",
    "transform_array",
    "write_features",
]
