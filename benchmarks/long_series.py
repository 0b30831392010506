"""One single-channel series of length 1e7 through the CPU transform: time and peak RSS.

    python benchmarks/long_series.py [--length 10000000] [--threads 2] [--fit]

Without ``--fit`` the biases are drawn at random (the transform's speed and memory do not depend
on their values; fitting 2,600 kernels on a 1e7-point series takes minutes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fit", action="store_true", help="fit the biases on the series (slow)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rocketstream.core import fit, native, plan, transform

    x = np.random.default_rng(0).standard_normal((1, 1, args.length), dtype=np.float32)
    rss0 = _status_mib("VmRSS")
    if args.fit:
        t = time.perf_counter()
        params = fit(x, random_state=0)
        print(f"fit: {time.perf_counter() - t:.2f} s")
    else:
        params = plan(1, 1, args.length, random_state=0)
        biases = np.random.default_rng(1).standard_normal(params.n_features_out).astype(np.float32) * 3
        params = params.with_biases(biases)
    t = time.perf_counter()
    f = transform(x, params).numpy()
    dt = time.perf_counter() - t
    print(f"native={native.enabled()} length={args.length} dilations={params.n_dilations} "
          f"features={f.shape[1]} threads={args.threads}")
    print(f"transform: {dt:.2f} s; peak RSS {_status_mib('VmHWM'):.0f} MiB "
          f"(RSS with data before the call {rss0:.0f} MiB)")


if __name__ == "__main__":
    main()
