"""Out-of-core MiniRocket on Dask-chunked Zarr arrays with PyTorch transforms."""

__version__ = "0.1.0"

