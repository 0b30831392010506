"""Out-of-core transform throughput against the in-memory kernel on the same rows, and the features
store's size on disk against raw float32.

    python benchmarks/outofcore_throughput.py                        # 8000x3x1000 and 200x3x10000
    python benchmarks/outofcore_throughput.py --shapes 2000x3x1000 --reps 1

For each (n, channels, length): a random float32 input store is written once (input chunks of
``--chunk`` rows, zstd, as ``ingest`` writes them), a 9,996-feature model is fitted, and then, in the
same process and alternating, best of ``--reps``:

- in memory: ``MiniRocketTransformer.transform`` of the whole input, already loaded as one NumPy array
  (the kernel alone: what out-of-core could reach at best);
- out of core: ``transform_to_zarr`` with default options (local threads, every core), from the input
  store into a new features store, including its integrity work (input and chunk sha256, crc32c, done
  markers, audit log).

It checks that both give the same bits, and prints series/s, the ratio (goal >= 0.9), the CPU time per
series of each (all threads), how busy the cores were during the out-of-core run (CPU time over wall
time x cores: near 100 % means no core waited on I/O) and the store's size on disk over raw float32
(goal <= 0.5), with the codecs the store uses.
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


def _shape(text: str) -> tuple[int, int, int]:
    n, c, length = (int(v) for v in text.lower().split("x"))
    return n, c, length


def _size(path: Path, name: str) -> int:
    root = path / name
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and f.name != "zarr.json")


def _write_input(path: Path, shape: tuple[int, int, int], chunk: int, seed: int) -> str:
    import zarr

    n, c, length = shape
    z = zarr.create_array(str(path), shape=shape, chunks=(chunk, c, length), dtype="float32",
                          dimension_names=("sample", "channel", "time"))
    rng = np.random.default_rng(seed)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        z[a:b] = rng.standard_normal((b - a, c, length), dtype=np.float32).cumsum(axis=2) / 10
    return str(path)


def _timed(fn) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of the whole process (every thread) and the result of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def run_shape(shape: tuple[int, int, int], chunk: int, reps: int, work: Path, levels: list[int | None]
              ) -> list[dict]:
    import zarr
    from zarr.codecs import Crc32cCodec, ZstdCodec

    import rocketstream.storage.features as features_store
    from rocketstream import MiniRocketTransformer, fit, transform_to_zarr

    src = _write_input(work / f"in-{'x'.join(map(str, shape))}.zarr", shape, chunk, seed=0)
    params = fit(src, num_features=10000, random_state=0)
    x = zarr.open_array(src)[:]
    est = MiniRocketTransformer(num_features=10000, random_state=0).fit(x[:64])
    est.parameters_ = params
    est.transform(x[: min(len(x), 8)])  # warm-up (plans, thread pools)
    default = features_store.FEATURE_COMPRESSORS
    n, out, rows = shape[0], work / "features.zarr", []
    mem: list[tuple[float, float]] = []
    for level in levels:
        if level is not None:  # a zstd level other than the default, for the size / speed trade-off
            features_store.FEATURE_COMPRESSORS = (ZstdCodec(level=level), Crc32cCodec()) if level else \
                (Crc32cCodec(),)  # 0: no compression, only the checksum
        ooc: list[tuple[float, float]] = []
        for _ in range(reps):  # alternating, so that drift hits both alike
            wall, cpu, ref = _timed(lambda: est.transform(x))
            mem.append((wall, cpu))
            shutil.rmtree(out, ignore_errors=True)
            wall, cpu, feats = _timed(lambda: transform_to_zarr(src, params, str(out)))
            ooc.append((wall, cpu))
        features_store.FEATURE_COMPRESSORS = default
        got = feats[:]
        arr = zarr.open_array(str(out / "features"))
        codecs = ", ".join(type(c).__name__.replace("Codec", "") for c in arr.filters + arr.compressors)
        zstd = [c for c in arr.compressors if isinstance(c, ZstdCodec)]
        best_mem, best_ooc = min(mem), min(ooc)
        rows.append({"shape": "x".join(map(str, shape)), "mem": n / best_mem[0], "ooc": n / best_ooc[0],
                     "mem_cpu": best_mem[1] / n * 1e3, "ooc_cpu": best_ooc[1] / n * 1e3,
                     "busy": best_ooc[1] / (best_ooc[0] * len(os.sched_getaffinity(0))),
                     "same": bool(np.array_equal(np.asarray(ref).view(np.uint32), got.view(np.uint32))),
                     "size": _size(out, "features") / (got.size * 4), "raw_mb": got.size * 4 / 1e6,
                     "codecs": codecs + (f" (level {zstd[0].level})" if zstd else ""),
                     "features": got.shape[1], "chunks": feats.chunks[0]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", type=_shape, default=[(8000, 3, 1000), (200, 3, 10000)])
    ap.add_argument("--chunk", type=int, default=500, help="input chunk rows (default 500)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--zstd-levels", nargs="+", type=int, default=None,
                    help="also time these zstd levels of the features codec (default: the store's own only; "
                    "0: uncompressed, crc32c only)")
    args = ap.parse_args()
    levels: list[int | None] = [None, *(args.zstd_levels or [])]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rs-ooc-"))
    rows = []
    try:
        for shape in args.shapes:
            for r in run_shape(shape, min(args.chunk, shape[0]), args.reps, work, levels):
                rows.append(r)
                print(f"  {r['shape']} {r['codecs']}: in-memory {r['mem']:.0f}/s, "
                      f"out-of-core {r['ooc']:.0f}/s", file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, best of {args.reps}")
    print()
    print("| shape | chunk rows | codecs | in-memory series/s | transform_to_zarr series/s | ratio | "
          "CPU ms/series in-memory | out-of-core | cores busy | store / raw float32 | same bits |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['chunks']} | {r['codecs']} | {r['mem']:.0f} | {r['ooc']:.0f} | "
              f"{r['ooc'] / r['mem']:.2f} | {r['mem_cpu']:.2f} | {r['ooc_cpu']:.2f} | {r['busy']:.0%} | "
              f"{r['size']:.3f} ({r['raw_mb']:.0f} MB raw) | {r['same']} |")


if __name__ == "__main__":
    main()
