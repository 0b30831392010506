"""The native kernel's 16-wide (AVX-512) loops against its 8-wide (AVX2) loops, same process.

    python benchmarks/native_width.py [--reps 7] [--threads 2 1] [--json out.json]

For each shape, one model is fitted and two native kernels are built from it, ``width=8`` and
``width=16`` (what ``ROCKETSTREAM_NATIVE_WIDTH`` picks). Their transforms (``transform_into``, the
call behind ``transform_numpy`` on contiguous float32) alternate, the order flipping every rep, and
the best of the reps is kept: other jobs share the machine, so the 1-minute load average is printed
beside each row. The two feature matrices are also compared bitwise. Needs an AVX-512 CPU for the
wide path (it says so and stops otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from rocketstream.core import fit
from rocketstream.core.native import NativeKernel, enabled, max_width, unavailable_reason

SHAPES = [(400, 3, 1000), (40, 3, 10000), (4, 1, 100000), (1000, 1, 150)]


def _data(n: int, c: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, length)).astype(np.float32)
    return np.cumsum(x, axis=2, dtype=np.float32) / np.float32(np.sqrt(length))  # random walks


def _time(kernel: NativeKernel, x: np.ndarray, out: np.ndarray, threads: int) -> float:
    t = time.perf_counter()
    kernel.transform_into(x, out, threads)
    return time.perf_counter() - t


def run(shapes, threads_list, reps: int) -> list[dict]:
    rows = []
    for n, c, length in shapes:
        x = _data(n, c, length)
        params = fit(x[: min(n, 64)], random_state=0)
        kernels = {w: NativeKernel(params, width=w) for w in (8, 16)}
        outs = {w: np.empty((n, params.n_features_out), np.float32) for w in (8, 16)}
        for w in (8, 16):  # warm-up (pages, thread pool)
            kernels[w].transform_into(x, outs[w], max(threads_list))
        same = bool(np.array_equal(outs[8], outs[16]))
        for threads in threads_list:
            load0 = os.getloadavg()[0]
            best = {8: np.inf, 16: np.inf}
            for rep in range(reps):
                for w in ((8, 16) if rep % 2 == 0 else (16, 8)):
                    best[w] = min(best[w], _time(kernels[w], x, outs[w], threads))
            same = same and bool(np.array_equal(outs[8], outs[16]))
            row = {
                "shape": f"{n} x {c} x {length}", "threads": threads,
                "narrow_series_s": n / best[8], "wide_series_s": n / best[16],
                "gain": best[8] / best[16] - 1, "bitwise_equal": same,
                "load_before": load0, "load_after": os.getloadavg()[0],
            }
            rows.append(row)
            cells = [row["shape"].rjust(16), str(threads), f"{row['narrow_series_s']:9.1f}",
                     f"{row['wide_series_s']:9.1f}", f"{100 * row['gain']:+6.1f}%", str(same),
                     f"{load0:.2f} / {row['load_after']:.2f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()
    if not enabled():
        raise SystemExit(f"native kernel unavailable: {unavailable_reason()}")
    if max_width() < 16:
        raise SystemExit(f"this CPU/build runs only the {max_width()}-wide path: nothing to compare")
    print(f"reps {args.reps} (best of), uptime load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| shape (n x C x L) | threads | narrow (8) series/s | wide (16) series/s | gain | bitwise equal "
          "| load 1 min before / after |")
    print("|---|---|---|---|---|---|---|")
    rows = run(SHAPES, args.threads, args.reps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
