"""Run a transform that, after each chunk, waits while a gate file exists, so a test can hold a job
in the middle of its run for as long as it needs (e.g. to start a second job) and then release it.

Usage: python gated_transform.py INPUT MODEL.json OUTPUT CHUNK_SIZE GATE_FILE
"""

from __future__ import annotations

import os
import sys
import time

from dask.callbacks import Callback

from rocketstream.api.outofcore import transform_to_zarr
from rocketstream.core import load


class Gate(Callback):
    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = gate

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("rocketstream-write-"):
            deadline = time.monotonic() + 300
            while os.path.exists(self.gate) and time.monotonic() < deadline:
                time.sleep(0.02)


if __name__ == "__main__":
    src, model, out, chunk, gate = sys.argv[1:6]
    with Gate(gate):
        transform_to_zarr(src, load(model), out, chunk_size=int(chunk), scheduler="synchronous")
