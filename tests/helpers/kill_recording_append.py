"""Append a recording's windows to a features store and SIGKILL this process at the K-th zarr array
resize (the store's growth stops between its writes: a real crash at a chosen step).

Usage: python kill_recording_append.py RECORDING.zarr MODEL.json OUTPUT LENGTH STRIDE CHUNK K
"""

from __future__ import annotations

import os
import signal
import sys

import zarr

from rocketstream.core import load
from rocketstream.ingest.recording import append_recording

if __name__ == "__main__":
    rec, model, out, length, stride, chunk, k = sys.argv[1:8]
    calls = {"n": 0}
    resize = zarr.Array.resize

    def dying_resize(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(k):
            os.kill(os.getpid(), signal.SIGKILL)
        return resize(self, *args, **kwargs)

    zarr.Array.resize = dying_resize
    append_recording(rec, load(model), out, int(length), int(stride), variable="signal",
                     intervals="interval_", chunk_size=int(chunk), scheduler="synchronous")
