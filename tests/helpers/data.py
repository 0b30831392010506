"""Small synthetic (sample, channel, time) datasets written to real Zarr stores on disk.

Thin aliases of :mod:`rocketstream.synthetic`, kept so that the tests import them from here.
"""

from __future__ import annotations

from rocketstream.synthetic import make_series as make_data
from rocketstream.synthetic import write_zarr

__all__ = ["make_data", "write_zarr"]
