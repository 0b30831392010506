"""Out-of-core transform on a CUDA device against its in-memory transform, by task size.

    python benchmarks/gpu_outofcore.py [--shapes 8000x3x1000 200x3x10000] [--sizes 0 100 500 2000]

For each shape: a random-walk float32 input store (chunks of 500 rows), a 9,996-feature model, then
the in-memory ``MiniRocketTransformer.transform`` (host NumPy in, host NumPy out) and
``transform_to_zarr`` with ``chunk_size`` = each of ``--sizes`` (0: the default sizing). Each is run
twice and the second (warm: Triton has compiled the kernels for that batch size) is reported, with the
features checked bitwise against the in-memory ones. Default device: what ``auto`` picks (the GPU).
``--phases`` then runs the default sizing once more with each phase of a task timed (summed over
tasks, and how many tasks were in it at once); ``--profile`` runs it on one thread
(``scheduler="synchronous"``) under cProfile and prints where a task's time goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from outofcore_throughput import _shape, _write_input  # noqa: E402


def profile(src: str, params, out: Path, n: int) -> None:
    """One synchronous run under cProfile: the top functions by cumulative time."""
    import cProfile
    import pstats

    from rocketstream import transform_to_zarr

    shutil.rmtree(out, ignore_errors=True)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.runcall(transform_to_zarr, src, params, str(out), scheduler="synchronous")
    wall = time.perf_counter() - t
    print(f"  synchronous (one thread): {n / wall:.0f} series/s; cProfile, cumulative:", flush=True)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(28)


def phases(src: str, params, out: Path, n: int) -> None:
    """A threaded run (the default scheduler and sizing) with each phase of a task timed: the time
    summed over tasks, and that sum over the run's wall time (how many tasks were in that phase at
    once, on average). The rest of a task is ``transform_block`` (the kernel with its copies)."""
    import collections
    import threading

    from rocketstream import transform_to_zarr
    from rocketstream.graph import runner, source
    from rocketstream.graph import transform as gtransform

    acc: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.defaultdict(int)
    lock = threading.Lock()

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    acc[name] += time.perf_counter() - t
                    count[name] += 1
        return wrapper

    patches = [(runner, "_run_chunk", "task"), (runner, "chunk_done", "done check"),
               (runner, "write_chunk", "write (data, digests, marker)"),
               (runner, "input_digest", "input sha256"), (gtransform, "transform_block", "transform_block"),
               (source.RowSource, "__call__", "read rows")]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    for obj, attr, name in patches:
        setattr(obj, attr, timed(name, getattr(obj, attr)))
    try:
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        transform_to_zarr(src, params, str(out))
        wall = time.perf_counter() - t
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)
    print(f"  threaded, phases timed: {n / wall:.0f} series/s, wall {wall:.2f} s, {count['task']} tasks",
          flush=True)
    for name, total in acc.items():
        print(f"    {name:32s} {total:8.3f} s summed, {1e3 * total / max(count[name], 1):8.2f} ms each, "
              f"{total / wall:5.2f} at once", flush=True)


def run(shape: tuple[int, int, int], sizes: list[int], work: Path, with_phases: bool = False,
        with_profile: bool = False) -> None:
    import zarr

    from rocketstream import MiniRocketTransformer, fit, transform_to_zarr

    src = _write_input(work / "in.zarr", shape, 500, seed=0)
    params = fit(src, num_features=10000, random_state=0)
    x = zarr.open_array(src)[:]
    est = MiniRocketTransformer(num_features=10000, random_state=0).fit(x[:64])
    est.parameters_ = params
    times = []
    for _ in range(2):
        t = time.perf_counter()
        ref = np.asarray(est.transform(x))
        times.append(time.perf_counter() - t)
    n = shape[0]
    name = "x".join(map(str, shape))
    print(f"{name}: in-memory {n / times[-1]:.0f} series/s (first call {times[0]:.2f} s)", flush=True)
    for size in dict.fromkeys(min(s, n) for s in sizes):  # capped at n, each once
        out = work / "features.zarr"
        walls = []
        for _ in range(2):
            shutil.rmtree(out, ignore_errors=True)
            w, c = time.perf_counter(), time.process_time()
            feats = transform_to_zarr(src, params, str(out), chunk_size=size or None)
            walls.append((time.perf_counter() - w, time.process_time() - c))
        wall, cpu = walls[-1]
        same = np.array_equal(ref.view(np.uint32), feats[:].view(np.uint32))
        print(f"  chunk_size {size or 'default'} -> task rows {feats.chunks[0]}: {n / wall:.0f} series/s, "
              f"ratio {times[-1] / wall:.2f}, cores busy {cpu / wall / os.cpu_count():.0%}, "
              f"first run {walls[0][0]:.2f} s, same bits {same}", flush=True)
    if with_phases:
        phases(src, params, work / "features.zarr", n)
    if with_profile:
        profile(src, params, work / "features.zarr", n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", type=_shape, default=[(8000, 3, 1000), (200, 3, 10000)])
    ap.add_argument("--sizes", nargs="+", type=int, default=[0, 100, 500, 2000])
    ap.add_argument("--phases", action="store_true", help="also time the phases of a threaded run")
    ap.add_argument("--profile", action="store_true", help="also profile a one-thread run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes:
            run(shape, args.sizes, Path(tmp), args.phases, args.profile)
            shutil.rmtree(Path(tmp) / "in.zarr", ignore_errors=True)


if __name__ == "__main__":
    main()
