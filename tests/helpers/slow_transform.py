"""Run a transform slowly (a pause after each chunk) so a test can SIGKILL it partway.

Usage: python slow_transform.py INPUT MODEL.json OUTPUT CHUNK_SIZE PAUSE_SECONDS
"""

from __future__ import annotations

import sys
import time

from dask.callbacks import Callback

from rocketstream.api.outofcore import transform_to_zarr
from rocketstream.core import load


class Pause(Callback):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("rocketstream-write-"):
            time.sleep(self.seconds)


if __name__ == "__main__":
    src, model, out, chunk, pause = sys.argv[1:6]
    with Pause(float(pause)):
        transform_to_zarr(src, load(model), out, chunk_size=int(chunk), scheduler="synchronous")
