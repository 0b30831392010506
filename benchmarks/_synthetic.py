"""Synthetic (sample, channel, time) Zarr inputs shared by the benchmark scripts."""

from __future__ import annotations

import numpy as np


def write_zarr_input(path: str, n: int, channels: int, length: int, chunk: int) -> None:
    """Noisy sines, written chunk by chunk (never the whole array in memory), seeded per chunk."""
    import zarr

    z = zarr.create_array(path, shape=(n, channels, length), chunks=(chunk, channels, length),
                          dtype="float32", overwrite=True)
    t = np.linspace(0, 1, length, dtype=np.float32)
    for s in range(0, n, chunk):
        rng = np.random.default_rng(s)
        k = min(chunk, n - s)
        z[s : s + k] = np.sin(2 * np.pi * rng.uniform(1, 9, (k, channels, 1)) * t) + rng.standard_normal(
            (k, channels, length), dtype=np.float32)
