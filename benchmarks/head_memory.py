"""Peak memory of softmax-head training from a features Zarr at two row counts.

    python benchmarks/head_memory.py                        # 10,000 and 40,000 rows x 9,996 features
    python benchmarks/head_memory.py --rows 20000 80000     # the larger check (0.8 and 3.2 GB stores)

Each size gets a synthetic float32 features store on disk (MiniRocket-like PPV values k/150, written
chunk by chunk) and is trained in a fresh subprocess, which reports its peak RSS (ru_maxrss) and the
RSS after imports. With bounded memory the peak does not grow with the number of rows. (Use sizes
with at least two full 4,096-row blocks: below that the prefetched block is smaller, so the peak is.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def make_store(path: Path, rows: int, features: int, chunk_rows: int, seed: int = 0) -> None:
    """Write synthetic 4-class features and labels (labels depend on a few features) chunk by chunk."""
    import zarr

    rng = np.random.default_rng(seed)
    x = zarr.create_array(store=str(path / "features.zarr"), shape=(rows, features),
                          chunks=(chunk_rows, features), dtype="float32")
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, chunk_rows):
        stop = min(rows, start + chunk_rows)
        block = (rng.integers(0, 151, size=(stop - start, features)) / 150).astype(np.float32)
        x[start:stop] = block
        y[start:stop] = (block[:, 0] > 0.5).astype(np.int64) + 2 * (block[:, 1] > 0.5)
    np.save(path / "labels.npy", y)


def child(path: Path, epochs: int) -> None:
    """Train in this process and print one JSON line with its memory use."""
    import torch
    import zarr

    from rocketstream.heads import train_softmax

    torch.set_num_threads(1)
    features = zarr.open_array(str(path / "features.zarr"), mode="r")
    labels = np.load(path / "labels.npy")
    base = rss_mib()
    t0 = time.perf_counter()
    head = train_softmax(features, labels, checkpoint_dir=path / "head", epochs=epochs, seed=0)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": features.shape[0], "after_imports_mib": round(base, 1),
                      "peak_mib": round(peak, 1), "seconds": round(seconds, 1),
                      "epochs_run": len(head.history_["epoch"])}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[10000, 40000])
    parser.add_argument("--features", type=int, default=9996)
    parser.add_argument("--chunk-rows", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    print(f"softmax head, {args.features} features, float32 store chunks of {args.chunk_rows} rows, "
          f"{args.epochs} epoch(s), batch 256, block 4096 rows")
    print(f"{'rows':>8} {'store MiB':>10} {'RSS after imports':>18} {'peak RSS':>9} {'train s':>8}")
    results = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            make_store(Path(tmp), rows, args.features, args.chunk_rows)
            out = subprocess.run([sys.executable, __file__, "--child", tmp, "--epochs", str(args.epochs)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        store = rows * args.features * 4 / 2**20
        print(f"{rows:>8} {store:>10.0f} {r['after_imports_mib']:>14.0f} MiB {r['peak_mib']:>5.0f} MiB "
              f"{r['seconds']:>8.1f}", flush=True)
    if len(results) > 1:
        growth = results[-1]["peak_mib"] - results[0]["peak_mib"]
        print(f"peak RSS change from {results[0]['rows']} to {results[-1]['rows']} rows: {growth:+.0f} MiB")


if __name__ == "__main__":
    main()
