"""Layer 3: Dask graphs. Fit from the drawn rows only, and one chunk runner for every per-chunk job
(transform, predict) written to Zarr with done markers and resume. Works with any Dask scheduler."""

from .fit import RowGatherer, fit_array, gather_rows
from .runner import ChunkJob, run
from .schedule import compute
from .source import as_dask_array, default_chunk_size
from .transform import features_job, prepared_transform, transform_array

__all__ = [
    "ChunkJob",
    "RowGatherer",
    "as_dask_array",
    "compute",
    "default_chunk_size",
    "features_job",
    "fit_array",
    "gather_rows",
    "prepared_transform",
    "run",
    "transform_array",
]
