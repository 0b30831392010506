"""Peak memory of the out-of-core transform at several dataset sizes: it should stay flat.

Each size runs in a fresh process: write a (n, channels, length) float32 Zarr store chunk by chunk,
warm up (torch, zarr, the transform plan) on a small store, then transform the whole store into a
features store while a thread samples the process RSS.

    python benchmarks/outofcore_memory.py                      # 32 MB and 128 MB, ~1 min
    python benchmarks/outofcore_memory.py --sizes 1000,4000    # 1 GB and 4 GB (slow: ~10 MB/s/core)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rocketstream.synthetic import write_sine_store

MB = 10**6


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def child(args: argparse.Namespace) -> None:
    from rocketstream.api.outofcore import fit, transform_to_zarr

    row = args.channels * args.length * 4
    n = max(args.chunk_size, int(args.size_mb * MB // row))
    work = Path(args.workdir)
    src, warm = str(work / f"in-{n}.zarr"), str(work / "warm.zarr")
    write_sine_store(src, n, args.channels, args.length, args.chunk_size)
    write_sine_store(warm, 4 * args.chunk_size, args.channels, args.length, args.chunk_size)
    params = fit(src, num_features=args.num_features, random_state=0)
    transform_to_zarr(warm, params, work / "warm-out.zarr", scheduler=args.scheduler, overwrite=True)
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    transform_to_zarr(src, params, work / f"out-{n}.zarr", scheduler=args.scheduler, overwrite=True,
                      memory_budget=args.memory_budget)
    seconds = time.perf_counter() - t0
    stop.set()
    th.join()
    print(json.dumps({"n": n, "dataset_mb": n * row / MB, "features_mb": n * params.n_features_out * 4 / MB,
                      "baseline_mb": base / MB, "peak_mb": peak[0] / MB, "seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="32,128", help="dataset sizes in MB, comma-separated (default 32,128)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--length", type=int, default=2000)
    p.add_argument("--chunk-size", type=int, default=100, help="samples per chunk (default 100)")
    p.add_argument("--num-features", type=int, default=84, help="features (default 84: I/O-heavy case)")
    p.add_argument("--scheduler", default="threads", help="threads, synchronous or processes")
    p.add_argument("--memory-budget", type=int, default=None, help="core micro-batch budget in bytes")
    p.add_argument("--workdir", default=None, help="where to write the stores (default: a temp dir)")
    p.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        args.size_mb = args.child
        return child(args)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        print(f"{'dataset MB':>10} {'features MB':>11} {'baseline MB':>11} {'peak RSS MB':>11} "
              f"{'growth MB':>9} {'seconds':>8}")
        for size in (float(s) for s in args.sizes.split(",")):
            argv = [sys.executable, __file__, "--child", str(size), "--workdir", tmp]
            for opt in ("channels", "length", "chunk_size", "num_features", "scheduler", "memory_budget"):
                value = getattr(args, opt)
                if value is not None:
                    argv += [f"--{opt.replace('_', '-')}", str(value)]
            res = subprocess.run(argv, capture_output=True, text=True, env=os.environ)
            if res.returncode:
                sys.exit(f"size {size} MB failed:\n{res.stderr[-3000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{r['dataset_mb']:>10.0f} {r['features_mb']:>11.1f} {r['baseline_mb']:>11.0f} "
                  f"{r['peak_mb']:>11.0f} {r['peak_mb'] - r['baseline_mb']:>9.1f} {r['seconds']:>8.1f}",
                  flush=True)
            for d in Path(tmp).glob("*"):
                if d.name.startswith(("in-", "out-")):
                    import shutil

                    shutil.rmtree(d)


if __name__ == "__main__":
    main()
