"""Grow a Zarr group on a schedule, as a streaming writer would: per step, sleep, then append the next
rows to the per-sample coordinates and then to the data array (zarr ``Array.append``: resize, then
write), and log ``{"time", "n"}`` (one JSON line per step) once the step is written.

Usage: python append_writer.py STORE.zarr DATA.npz SIZES PAUSE LOG [HOLD_AFTER GATE_FILE]

DATA.npz holds ``X`` and one array per coordinate (``label``...), all rows; the store already holds the
first rows. SIZES is a comma-separated list of rows per step. With HOLD_AFTER, after that many steps the
writer waits while GATE_FILE exists.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import zarr

if __name__ == "__main__":
    store, data, sizes, pause, log = sys.argv[1:6]
    hold_after, gate = (int(sys.argv[6]), sys.argv[7]) if len(sys.argv) > 7 else (None, None)
    arrays = dict(np.load(data))
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    for step, size in enumerate(int(s) for s in sizes.split(",")):
        if hold_after is not None and step == hold_after:
            deadline = time.monotonic() + 300
            while os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(float(pause))
        n = group["X"].shape[0]
        for name in sorted(k for k in arrays if k != "X"):  # coordinates first, then the data
            group[name].append(arrays[name][n : n + size])
        group["X"].append(arrays["X"][n : n + size])
        with open(log, "a") as f:
            f.write(json.dumps({"time": time.time(), "n": n + size}) + "\n")
