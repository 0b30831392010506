"""Layer 3: Dask graphs. Fit from the drawn rows only, and one chunk runner for every per-chunk job
(transform, predict) written to Zarr with done markers and resume. Works with any Dask scheduler."""

from .._lazy import attach

# imported on first use (rocketstream._lazy): a command that needs one module loads only its chain
__getattr__, __dir__, __all__ = attach(__name__, {
    "fit": ["RowGatherer", "fit_array", "gather_rows"],
    "runner": ["ChunkJob", "run"],
    "schedule": ["compute"],
    "source": ["as_dask_array", "default_chunk_size"],
    "transform": ["features_job", "prepared_transform", "transform_array"],
})
