"""The fixed cost of one chunk task's store work: the done check and the write of a tiny chunk.

    python benchmarks/task_overhead.py [--chunks 300] [--threads 1 2 4]

A features store of ``--chunks`` chunks of 2 rows x 924 features is filled by a thread pool, each
task doing what a transform task does around its kernel: ``chunk_done``, then ``write_chunk`` (data,
chunk digest, input digest, marker). Twice, alternating, in one process:

- ``opened per task``: no layout token, so every task opens the group and its arrays (what every
  task did before the arrays were kept open per process);
- ``kept open``: the layout token of the run, as the chunk runner passes it: each process opens the
  store's arrays once.

The chunks are tiny so that the data's encoding is negligible: what is left is the metadata reads and
the small writes, all of which go through zarr-python's single event-loop thread. Prints ms per task
(wall) and CPU ms per task; the stores are checked complete.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rocketstream.storage import FeatureStore
from rocketstream.storage.chunkwriter import chunk_done, layout_token, write_chunk

ROWS, FEATURES = 2, 924


def fill(path: Path, n_chunks: int, threads: int, keep_open: bool) -> tuple[float, float]:
    """Fill a new store chunk by chunk; (wall, CPU) seconds."""
    store = FeatureStore.create(path, n_samples=ROWS * n_chunks, n_features=FEATURES, chunk_size=ROWS,
                                meta={}, feature_coords={})
    token = layout_token(store.path, None) if keep_open else None
    block = np.random.default_rng(0).random((ROWS, FEATURES), dtype=np.float32)
    digest = os.urandom(32)

    def task(i: int) -> None:
        if not chunk_done(store.path, None, i, token):
            write_chunk(store.path, None, i, i * ROWS, {"features": block}, digest, token)

    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(task, range(n_chunks)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert FeatureStore.open(path).is_complete()
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=300)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.chunks} chunks of {ROWS} x {FEATURES}; best of {args.reps}")
    print("| threads | opened per task: ms/task | CPU ms/task | kept open: ms/task | CPU ms/task "
          "| speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            best: dict[bool, tuple[float, float]] = {}
            for rep in range(args.reps):
                for keep in (False, True):
                    w, c = fill(Path(tmp) / f"f-{threads}-{rep}-{keep}.zarr", args.chunks, threads, keep)
                    if keep not in best or w < best[keep][0]:
                        best[keep] = (w, c)
            (w0, c0), (w1, c1) = best[False], best[True]
            n = args.chunks
            print(f"| {threads} | {1e3 * w0 / n:.2f} | {1e3 * c0 / n:.2f} | {1e3 * w1 / n:.2f} "
                  f"| {1e3 * c1 / n:.2f} | {w0 / w1:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
