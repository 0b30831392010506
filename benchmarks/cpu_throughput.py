"""CPU throughput of rocketstream's transform and fit versus aeon 1.6 MiniRocket (2 threads).

    python benchmarks/cpu_throughput.py [--quick] [--threads 2] [--reps 2]

Every (library, shape) case runs in its own subprocess on the same random float32 data, so the
peak RSS increase of the timed call is measured in isolation: the peak counter (VmHWM) is reset
through /proc/self/clear_refs after the warm-up, and the increase is VmHWM - VmRSS before the call.
aeon is warmed up on a small dataset first (numba compilation excluded from the timings and
reported separately as its first call); ours reports the first transform call of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = [(2000, 3, 1000), (200, 3, 10000), (20, 1, 100000)]
QUICK_SHAPES = [(200, 3, 1000), (20, 3, 10000), (4, 1, 100000)]


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(fn):
    """(wall seconds, CPU seconds of all threads, peak RSS increase in MiB) of fn()."""
    _reset_peak()
    before = _status_kb("VmRSS")
    c = _cpu_seconds()
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    cpu = _cpu_seconds() - c
    peak = _status_kb("VmHWM")
    return dt, cpu, (peak - before) / 1024


def _data(shape):
    import numpy as np

    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def worker(lib: str, shape, threads: int, reps: int) -> dict:
    x = _data(shape)
    res: dict = {"lib": lib, "shape": list(shape)}
    if lib == "aeon":
        os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))
        from aeon.transformations.collection.convolution_based import MiniRocket

        warm = x[:4, :, : min(shape[2], 200)]
        t = time.perf_counter()
        MiniRocket(random_state=0, n_jobs=threads).fit(warm).transform(warm)
        res["first_call_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model = MiniRocket(random_state=0, n_jobs=threads).fit(x)
        res["fit_s"] = time.perf_counter() - t
        fn = lambda: model.transform(x)  # noqa: E731
    else:
        import torch

        torch.set_num_threads(threads)
        from rocketstream.core import fit, native, transform

        res["native"] = native.enabled()
        t = time.perf_counter()
        params = fit(x, random_state=0)
        res["fit_s"] = time.perf_counter() - t
        t = time.perf_counter()
        transform(x[:1], params)
        res["first_call_s"] = time.perf_counter() - t
        t = time.perf_counter()
        transform(x[:1], params)
        res["warm_call_s"] = time.perf_counter() - t
        fn = lambda: transform(x, params).numpy()  # noqa: E731
    times, cpus, peaks = [], [], []
    for _ in range(reps):
        dt, cpu, peak = _measure(fn)
        times.append(dt)
        cpus.append(cpu)
        peaks.append(peak)
    res["transform_s"] = min(times)
    res["transform_cpu_s"] = min(cpus)
    res["peak_rss_increase_mib"] = max(peaks)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller shapes (a tenth or less)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="timed calls per worker process")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternating aeon/ours worker processes per shape (best of all is kept)")
    ap.add_argument("--only", choices=["aeon", "ours"], default=None)
    ap.add_argument("--worker", nargs=4, metavar=("LIB", "N", "C", "L"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        lib, *dims = args.worker
        print(json.dumps(worker(lib, tuple(int(d) for d in dims), args.threads, args.reps)))
        return
    libs = [args.only] if args.only else ["aeon", "ours"]
    print(f"{'shape':>18} {'lib':>5} {'transform s':>11} {'cpu s':>7} {'series/s':>9} {'ours/aeon':>9} "
          f"{'peak +MiB':>9} {'fit s':>7} {'first call s':>12}")
    for shape in QUICK_SHAPES if args.quick else SHAPES:
        rows: dict[str, dict] = {}
        for _ in range(args.rounds):  # alternate, so both see the same background load
            for lib in libs:
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--reps", str(args.reps),
                       "--worker", lib, *map(str, shape)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                best = rows.setdefault(lib, r)
                for key in ("transform_s", "transform_cpu_s", "fit_s", "first_call_s"):
                    best[key] = min(best[key], r[key])
                best["peak_rss_increase_mib"] = max(best["peak_rss_increase_mib"], r["peak_rss_increase_mib"])
        for lib, r in rows.items():
            sps = shape[0] / r["transform_s"]
            ratio = ""
            if lib == "ours" and "aeon" in rows:
                ratio = f"{rows['aeon']['transform_s'] / r['transform_s']:.2f}x"
            first = f"{r['first_call_s']:.3f}"
            if "warm_call_s" in r:
                first += f" (warm {r['warm_call_s']:.3f})"
            name = "x".join(map(str, shape))
            print(f"{name:>18} {lib:>5} {r['transform_s']:>11.3f} {r['transform_cpu_s']:>7.2f} {sps:>9.1f} "
                  f"{ratio:>9} {r['peak_rss_increase_mib']:>9.1f} {r['fit_s']:>7.2f} {first:>12}", flush=True)


if __name__ == "__main__":
    main()
