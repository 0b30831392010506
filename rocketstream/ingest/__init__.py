"""Data in: read time series files and write them as (sample, channel, time) Zarr stores."""

from .readers import Collection, IngestError, read_any, read_numpy, read_ts, read_tsv, read_xarray
from .writer import INGEST_ATTR, padded_array, write_collection

__all__ = [
    "INGEST_ATTR",
    "Collection",
    "IngestError",
    "ingest",
    "padded_array",
    "read_any",
    "read_numpy",
    "read_ts",
    "read_tsv",
    "read_xarray",
    "write_collection",
]


def ingest(path, output, *, fmt=None, variable=None, label_variable=None, chunk_size=None,
           overwrite=False, progress=False):
    """Read ``path`` (.ts, .tsv, .npy/.npz, netCDF) and write the Zarr store ``output``."""
    col = read_any(path, fmt, variable, label_variable)
    return write_collection(col, output, chunk_size=chunk_size, overwrite=overwrite, source=str(path),
                            progress=progress)
