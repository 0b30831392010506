"""GPU throughput of rocketstream's fused CUDA transform versus aeon 1.6 (all CPU cores) and tsai.

    python benchmarks/gpu_throughput.py [--quick] [--json results.json] [--no-tsai] [--no-aeon]

On one CUDA device, for 20000x3x1000 and 2000x3x10000 float32 (random normal, seed 0):
- ours: fit (native CPU), first call (includes Triton's compile), transform from host NumPy to
  device features, and from device-resident input; peak GPU memory; bitwise check against the
  native CPU engine on the first rows;
- aeon ``MiniRocket(n_jobs=<all cores>)`` in a subprocess on the same data (numba compile excluded);
- tsai ``MiniRocketFeatures`` + ``get_minirocket_features`` on the same GPU (its defaults, so cuDNN
  may use TF32), if tsai is importable; chunk size halved on out-of-memory;
- the torch fallback (``ROCKETSTREAM_TRITON=0``) on a slice, a tuning sweep, a profile by kernel
  (torch.profiler) and the comparison rate against the GPU's peak;
- one 1-channel series of length 1e7 and 1e8: time, peak GPU memory and bitwise equality.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np

SHAPES = [(20000, 3, 1000), (2000, 3, 10000)]
QUICK_SHAPES = [(2000, 3, 1000), (200, 3, 10000)]
LONG = [10**7, 10**8]
QUICK_LONG = [10**6]
#: ``--device cpu`` runs every step on the CPU engines: a logic check of this script, not a benchmark.
DEVICE = "cuda"
SWEEP = [dict(block_t=b, num_warps=w) for b in (256, 512, 1024) for w in (2, 4, 8)]
SWEEP += [dict(k_group=g) for g in (2, 6, 14)] + [dict(inline=True)]


def _data(shape) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def _sync():
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _reset_peak() -> int:
    """Reset the GPU's peak-memory counter; returns the bytes allocated now."""
    import torch

    if DEVICE != "cuda":
        return 0
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def _peak_mib(base: int) -> float:
    import torch

    return (torch.cuda.max_memory_allocated() - base) / 2**20 if DEVICE == "cuda" else float("nan")


def _timed(fn, reps: int) -> tuple[float, object]:
    """Best wall time of ``reps`` synchronised calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(reps):
        _sync()
        t = time.perf_counter()
        out = fn()
        _sync()
        best = min(best, time.perf_counter() - t)
    return best, out


def aeon_worker(shape, jobs: int, reps: int) -> dict:
    """aeon's fit and transform on all CPU cores (run in its own process)."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(jobs))
    from aeon.transformations.collection.convolution_based import MiniRocket

    x = _data(shape)
    warm = x[:8, :, : min(shape[2], 200)]
    t = time.perf_counter()
    MiniRocket(random_state=0, n_jobs=jobs).fit(warm).transform(warm)
    res = {"first_call_s": time.perf_counter() - t}
    t = time.perf_counter()
    model = MiniRocket(random_state=0, n_jobs=jobs).fit(x)
    res["fit_s"] = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        model.transform(x)
        times.append(time.perf_counter() - t)
    res["transform_s"] = min(times)
    return res


def run_aeon(shape, jobs: int, reps: int) -> dict:
    cmd = [sys.executable, __file__, "--aeon-worker", *map(str, shape), "--jobs", str(jobs),
           "--reps", str(reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        return {"error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def comparisons_per_series(params) -> int:
    """Bias comparisons one series costs: sum over (kernel, dilation) of window length x biases."""
    from rocketstream.core import triton_engine as te

    prepared = te.TritonKernels(params, _cpu(), length=params.length, all_padded=False)
    return int(sum(int((d.hi - d.lo).sum()) * d.nfd for d in prepared.dilations))


def _cpu():
    import torch

    return torch.device("cpu")


def run_ours(x: np.ndarray, reps: int, fitted: dict) -> dict:
    """Our fit and transform; the fitted parameters are left in ``fitted["params"]``."""
    import torch

    from rocketstream.core import PreparedTransform, fit, transform

    res: dict = {}
    t = time.perf_counter()
    params = fit(x, random_state=0)
    res["fit_s"] = time.perf_counter() - t
    prepared = PreparedTransform(params, DEVICE)
    res["engine"] = "triton" if prepared.uses_triton else "native" if prepared.uses_native else "torch"
    t = time.perf_counter()
    transform(x[:64], params, prepared=prepared)
    _sync()
    res["first_call_s"] = time.perf_counter() - t
    res["warm_call_s"], _ = _timed(lambda: transform(x[:64], params, prepared=prepared), 1)
    base = _reset_peak()
    res["host_to_features_s"], out = _timed(lambda: transform(x, params, prepared=prepared), reps)
    res["peak_gpu_mib"] = _peak_mib(base)
    xd = torch.from_numpy(x).to(DEVICE)
    res["device_input_s"], _ = _timed(lambda: transform(xd, params, prepared=prepared), reps)
    check = min(len(x), 256)
    cpu = transform(x[:check], params, device="cpu").numpy()
    res["bitwise_equal_rows"] = check
    res["differing_features"] = int((out[:check].cpu().numpy() != cpu).sum())
    res["comparisons_per_series"] = comparisons_per_series(params)
    fitted["params"] = params
    return res


def run_torch_fallback(x: np.ndarray, params, rows: int) -> dict:
    from rocketstream.core import PreparedTransform, transform
    from rocketstream.core import triton_engine as te

    os.environ[te.ENV_VAR] = "0"
    try:
        prepared = PreparedTransform(params, DEVICE)
        xs = x[:rows]
        transform(xs[:8], params, prepared=prepared)
        dt, _ = _timed(lambda: transform(xs, params, prepared=prepared), 1)
    finally:
        del os.environ[te.ENV_VAR]
    return {"rows": rows, "transform_s": dt, "series_per_s": rows / dt}


def run_sweep(x: np.ndarray, params) -> list[dict]:
    import torch

    from rocketstream.core import triton_engine as te

    if DEVICE != "cuda":
        return []
    prepared = te.TritonKernels(params, torch.device("cuda"), length=params.length, all_padded=False)
    xd = torch.from_numpy(x).cuda()
    rows = []
    for tuning in SWEEP:
        try:
            te.transform(xd[:64], prepared, **tuning)
            dt, _ = _timed(lambda tuning=tuning: te.transform(xd, prepared, **tuning), 2)
            rows.append({**tuning, "transform_s": dt})
        except Exception as exc:  # report and go on: a variant may not compile on this GPU
            rows.append({**tuning, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return rows


def run_profile(x: np.ndarray, params) -> list[tuple[str, float]]:
    """Device time per kernel name (ms) over one transform of device-resident input."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from rocketstream.core import PreparedTransform, transform

    prepared = PreparedTransform(params, DEVICE)
    xd = torch.from_numpy(x).to(DEVICE)
    transform(xd[:64], params, prepared=prepared)
    _sync()
    activity = ProfilerActivity.CUDA if DEVICE == "cuda" else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        transform(xd, params, prepared=prepared)
        _sync()
    rows = []
    for ev in prof.key_averages():
        us = getattr(ev, "self_device_time_total", None)
        if us is None:
            us = getattr(ev, "self_cuda_time_total", 0)
        if DEVICE != "cuda":
            us = ev.self_cpu_time_total
        if us:
            rows.append((ev.key[:60], us / 1000))
    return sorted(rows, key=lambda r: -r[1])[:10]


def run_tsai(x: np.ndarray, reps: int) -> dict:
    import torch

    try:
        from tsai.models.MINIROCKET_Pytorch import MiniRocketFeatures, get_minirocket_features
    except ImportError as exc:
        return {"error": f"tsai not importable: {exc}"}
    n, c, length = x.shape
    mrf = MiniRocketFeatures(c, length, random_state=0).to(DEVICE)
    t = time.perf_counter()
    mrf.fit(x)
    _sync()
    res: dict = {"fit_s": time.perf_counter() - t, "tf32_allowed": torch.backends.cudnn.allow_tf32}
    chunk, cuda = 1024, DEVICE == "cuda"
    while chunk >= 1:
        try:
            get_minirocket_features(x[:64], mrf, chunksize=chunk, use_cuda=cuda, to_np=False)
            base = _reset_peak()
            dt, out = _timed(lambda chunk=chunk: get_minirocket_features(
                x, mrf, chunksize=chunk, use_cuda=cuda, to_np=False), reps)
            res.update(chunksize=chunk, transform_s=dt, peak_gpu_mib=_peak_mib(base))
            del out
            return res
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            chunk //= 2
    res["error"] = "out of memory at every chunk size"
    return res


def run_long(length: int) -> dict:
    """One 1-channel series: GPU time and memory, bitwise against the native CPU engine."""

    from rocketstream.core import PreparedTransform, plan, transform

    x = np.random.default_rng(1).standard_normal((1, 1, length), dtype=np.float32)
    x = x.cumsum(-1, dtype=np.float32)
    params = plan(1, 1, length, 10_000, 32, 0)
    rng = np.random.default_rng(2)  # bias values do not change the cost; spread them over the data
    params = params.with_biases(rng.uniform(-50, 50, params.n_features_out).astype(np.float32))
    prepared = PreparedTransform(params, DEVICE)
    transform(x, params, prepared=prepared)
    base = _reset_peak()
    dt, out = _timed(lambda: transform(x, params, prepared=prepared), 1)
    res = {"length": length, "transform_s": dt, "peak_gpu_mib": _peak_mib(base)}
    t = time.perf_counter()
    cpu = transform(x, params, device="cpu").numpy()
    res["cpu_native_s"] = time.perf_counter() - t
    res["differing_features"] = int((out.cpu().numpy() != cpu).sum())
    return res


def gpu_peak() -> dict:
    """Peak simple fp32 instruction rate (SMs x 128 lanes x max SM clock) and copy bandwidth."""
    import torch

    if DEVICE != "cuda":
        return {"name": "cpu (logic check only)"}
    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "sms": props.multi_processor_count}
    try:
        mhz = subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, check=True).stdout.split()[0]
        info["max_sm_mhz"] = float(mhz)
        info["peak_lane_ops_per_s"] = props.multi_processor_count * 128 * float(mhz) * 1e6
    except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
        pass
    a = torch.empty(2**29, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    dt, _ = _timed(lambda: b.copy_(a), 5)
    info["copy_gb_per_s"] = 2 * a.numel() * 4 / dt / 1e9
    return info


#: Where every finished section is saved at once (``--json``), so a run cut short keeps its numbers.
_SAVE: tuple[str, dict] | None = None


def _section(results: dict, key: str, fn, *args):
    t = time.perf_counter()
    try:
        results[key] = fn(*args)
    except Exception:  # a benchmark section failing must not lose the others' numbers
        results[key] = {"error": traceback.format_exc()[-1500:]}
    print(f"[{time.perf_counter() - t:6.1f} s] {key}: {json.dumps(results[key], default=str)[:400]}",
          flush=True)
    if _SAVE is not None:
        with open(_SAVE[0], "w") as f:
            json.dump(_SAVE[1], f, indent=1, default=str)
    return results[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tenth of the rows, long series of 1e6")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="aeon n_jobs (default: all cores)")
    ap.add_argument("--no-aeon", action="store_true")
    ap.add_argument("--no-tsai", action="store_true")
    ap.add_argument("--json", default=None, help="also write all figures to this file")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: a quick logic check of this script on the CPU engines (not a benchmark)")
    ap.add_argument("--aeon-worker", nargs=3, type=int, metavar=("N", "C", "L"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.aeon_worker:
        print(json.dumps(aeon_worker(tuple(args.aeon_worker), args.jobs, args.reps)))
        return
    import torch

    global DEVICE, _SAVE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark needs one (cpu_throughput.py covers the CPU)")
    results: dict = {"torch": torch.__version__, "jobs": args.jobs}
    if args.json:
        _SAVE = (args.json, results)
    try:
        import triton

        results["triton"] = triton.__version__
    except ImportError:
        results["triton"] = None
    _section(results, "gpu", gpu_peak)
    summary = []
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if DEVICE == "cpu":
        shapes = [(20, 3, 1000), (4, 3, 10000)]
    longs = (QUICK_LONG if args.quick else LONG) if DEVICE == "cuda" else [10**5]
    for shape in shapes:
        name = "x".join(map(str, shape))
        x = _data(shape)
        r: dict = {}
        results[name] = r
        fitted: dict = {}
        _section(r, "ours", run_ours, x, args.reps, fitted)
        params = fitted.get("params")
        if not args.no_aeon:
            _section(r, "aeon", run_aeon, shape, args.jobs, 2)
        if not args.no_tsai:
            _section(r, "tsai", run_tsai, x, args.reps)
        if params is not None:
            _section(r, "torch_fallback", run_torch_fallback, x, params, max(1, shape[0] // 10))
            if shape == shapes[0]:
                _section(r, "sweep", run_sweep, x, params)
                _section(r, "profile_ms", run_profile, x, params)
        summary.append((name, r))
        del x
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    for length in longs:
        _section(results, f"long_{length}", run_long, length)
    _print_summary(results, summary)


def _print_summary(results: dict, summary) -> None:
    gpu = results.get("gpu", {})
    print(f"\ndevice: {gpu.get('name')} ({gpu.get('sms')} SMs), torch {results['torch']}, "
          f"triton {results['triton']}, aeon n_jobs={results['jobs']}")
    print(f"{'shape':>14} {'ours s':>8} {'(dev in)':>8} {'series/s':>10} {'aeon s':>8} {'x aeon':>7} "
          f"{'tsai s':>8} {'x tsai':>7} {'GPU MiB':>8} {'exact':>6} {'% peak':>7}")
    for name, r in summary:
        o, a, t = r.get("ours", {}), r.get("aeon", {}), r.get("tsai", {})
        if "host_to_features_s" not in o:
            print(f"{name:>14} ours failed: {str(o)[:300]}")
            continue
        s = o["host_to_features_s"]
        n = int(name.split("x")[0])
        peak = gpu.get("peak_lane_ops_per_s")
        pct = f"{100 * n * o['comparisons_per_series'] / s / peak:.1f}" if peak else "?"
        ax = f"{a['transform_s'] / s:.1f}" if "transform_s" in a else "-"
        tx = f"{t['transform_s'] / s:.1f}" if "transform_s" in t else "-"
        a_s, t_s = a.get("transform_s", float("nan")), t.get("transform_s", float("nan"))
        print(f"{name:>14} {s:>8.3f} {o['device_input_s']:>8.3f} {n / s:>10.0f} "
              f"{a_s:>8.3f} {ax:>7} {t_s:>8.3f} {tx:>7} {o['peak_gpu_mib']:>8.0f} "
              f"{str(o['differing_features'] == 0):>6} {pct:>7}")
    for key in sorted(k for k in results if k.startswith("long_")):
        print(f"{key}: {results[key]}")


if __name__ == "__main__":
    main()
