"""Append to a features store, and SIGKILL this process at the K-th array resize of the store's growth
(so the growth stops between its attribute writes: a real crash at a chosen step).

Usage: python kill_during_grow.py INPUT MODEL.json OUTPUT K
"""

from __future__ import annotations

import os
import signal
import sys

import zarr

from rocketstream.api.transform import run_transform
from rocketstream.core import load

if __name__ == "__main__":
    src, model, out, k = sys.argv[1:5]
    calls = {"n": 0}
    resize = zarr.Array.resize

    def dying_resize(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(k):
            os.kill(os.getpid(), signal.SIGKILL)
        return resize(self, *args, **kwargs)

    zarr.Array.resize = dying_resize
    run_transform(src, load(model), out, append=True, scheduler="synchronous")
