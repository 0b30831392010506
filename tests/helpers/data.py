"""Small synthetic (sample, channel, time) datasets written to real Zarr stores on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr


def make_data(n: int = 240, channels: int = 2, length: int = 120, seed: int = 0) -> np.ndarray:
    """Noisy sines: float32 (n, channels, length)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    freq = rng.uniform(2, 10, (n, channels, 1))
    x = np.sin(2 * np.pi * freq * t) + 0.5 * rng.standard_normal((n, channels, length))
    return x.astype(np.float32)


def write_zarr(path: Path | str, x: np.ndarray, chunk_rows: int, time_chunk: int | None = None,
               group_var: str | None = None) -> str:
    """Write ``x`` to a Zarr array (or to ``group_var`` inside a group); returns the path."""
    chunks = (chunk_rows, x.shape[1], time_chunk or x.shape[2])
    if group_var:
        g = zarr.open_group(str(path), mode="w-")
        a = g.create_array(group_var, shape=x.shape, chunks=chunks, dtype=x.dtype,
                           dimension_names=("sample", "channel", "time"))
        g.create_array("label", shape=(x.shape[0],), dtype="int64", dimension_names=("sample",))[:] = (
            np.arange(x.shape[0]) % 3)
    else:
        a = zarr.create_array(str(path), shape=x.shape, chunks=chunks, dtype=x.dtype)
    a[:] = x
    return str(path)
