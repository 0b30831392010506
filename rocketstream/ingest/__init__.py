"""Data in: read time series files and write them as (sample, channel, time) Zarr stores."""

from .readers import Collection, IngestError, read_any, read_numpy, read_ts, read_tsv, read_xarray
from .recording import RecordingFollowReport, append_recording, follow_recording, recording_windows
from .writer import INGEST_ATTR, padded_array, write_collection

__all__ = [
    "INGEST_ATTR",
    "Collection",
    "IngestError",
    "RecordingFollowReport",
    "append_recording",
    "follow_recording",
    "ingest",
    "padded_array",
    "read_any",
    "read_numpy",
    "read_ts",
    "read_tsv",
    "read_xarray",
    "recording_windows",
    "write_collection",
]


def ingest(path, output, *, fmt=None, variable=None, label_variable=None, chunk_size=None,
           overwrite=False, progress=False):
    """Read ``path`` (.ts, .tsv, .npy/.npz, netCDF) and write the Zarr store ``output``.

    Parameters
    ----------
    path : str or os.PathLike
        The input file.
    output : str or os.PathLike
        The Zarr store to write, a local directory (layout: :mod:`rocketstream.ingest.writer`).
    fmt : str, optional
        The format (``"ts"``, ``"tsv"``, ``"npy"``, ``"npz"``, ``"nc"``...), default: from the suffix.
    variable, label_variable : str, optional
        The data and label arrays of an .npz or netCDF file.
    chunk_size : int, optional
        Samples per chunk (default: about 8 MiB).
    overwrite : bool, default False
        Replace a store an earlier ingest wrote.
    progress : bool, default False
        Show a progress bar per chunk.

    Returns
    -------
    pathlib.Path
        The absolute path of the store.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IngestError
        The file cannot be read as a time-series collection, holds NaN/Inf, or a bad ``chunk_size``.
    FileExistsError
        ``output`` exists and ``overwrite`` is false.
    UnsafeOutputError
        ``output`` overlaps ``path``, or holds something ingest did not write.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from rocketstream.ingest import ingest
    >>> np.savez("train.npz", X=np.zeros((100, 2, 50)), y=np.arange(100) % 3)
    >>> path = ingest("train.npz", "train.zarr")
    >>> xr.open_zarr(path)["X"].shape
    (100, 2, 50)
    """
    col = read_any(path, fmt, variable, label_variable)
    return write_collection(col, output, chunk_size=chunk_size, overwrite=overwrite, source=str(path),
                            progress=progress)
