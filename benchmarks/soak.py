"""Soak: repeat transforms of the same store for several minutes and print the process RSS over time.

Each round rewrites the features store from scratch (overwrite) and then resumes it (which re-hashes
every chunk against its sha256 and computes nothing), so the write, marker, digest, verify and lock
paths all run every round. RSS should stay flat after the first rounds (torch, zarr and the transform
plan warm up); the summary prints the growth from round 3 to the end and a least-squares slope.

    python benchmarks/soak.py                     # 3 minutes, 400 x 1 x 1000, 40 chunks, threads
    python benchmarks/soak.py --minutes 10 --scheduler synchronous
    python benchmarks/soak.py --markers 200000    # also: RSS of reading 200000 done markers

``--markers N`` creates an (uncomputed) store of N one-row chunks and measures the peak RSS of
``FeatureStore.done()`` / ``missing_chunks``, which read the markers in batches of ``MARKER_BATCH``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from rocketstream.synthetic import write_sine_store

MB = 2**20


def _rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


class PeakSampler:
    """Samples the RSS every 10 ms in a thread; ``reset()`` starts a new window."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.01)

    def reset(self) -> float:
        peak, self.peak = self.peak, _rss()
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def soak(args: argparse.Namespace, work: Path) -> None:
    from rocketstream.api.outofcore import fit, run_transform

    src, out = str(work / "in.zarr"), work / "out.zarr"
    write_sine_store(src, args.samples, args.channels, args.length, args.chunk_size)
    params = fit(src, num_features=args.num_features, random_state=0)
    sampler = PeakSampler()
    print(f"soak: {args.samples} x {args.channels} x {args.length} float32, {args.num_features} features, "
          f"{-(-args.samples // args.chunk_size)} chunks, scheduler {args.scheduler}, {args.minutes} min")
    print(f"{'round':>5} {'elapsed s':>9} {'round s':>7} {'RSS MB':>7} {'peak MB':>7}", flush=True)
    t0 = time.perf_counter()
    rounds: list[tuple[float, float]] = []
    r = 0
    while time.perf_counter() - t0 < args.minutes * 60:
        r += 1
        t = time.perf_counter()
        run_transform(src, params, out, overwrite=True, scheduler=args.scheduler)
        _, computed = run_transform(src, params, out, resume=True, scheduler=args.scheduler)
        assert computed == [], computed
        rss, peak = _rss(), sampler.reset()
        elapsed = time.perf_counter() - t0
        rounds.append((elapsed, rss))
        print(f"{r:>5} {elapsed:>9.1f} {time.perf_counter() - t:>7.2f} {rss:>7.1f} {peak:>7.1f}", flush=True)
    sampler.stop()
    steady = rounds[2:] if len(rounds) > 4 else rounds
    times, values = np.array([t for t, _ in steady]), np.array([v for _, v in steady])
    slope = float(np.polyfit(times / 60, values, 1)[0]) if len(steady) > 1 else 0.0
    print(f"summary: {r} rounds; RSS after round 3 {values[0]:.1f} MB, at the end {values[-1]:.1f} MB "
          f"(growth {values[-1] - values[0]:+.1f} MB, min {values.min():.1f}, max {values.max():.1f}); "
          f"slope {slope:+.2f} MB/min")


def markers(n: int, work: Path) -> None:
    from rocketstream.graph.runner import missing_chunks
    from rocketstream.storage import FeatureStore
    from rocketstream.storage.features import MARKER_BATCH

    store = FeatureStore.create(work / "markers.zarr", n_samples=n, n_features=1, chunk_size=1, meta={},
                                feature_coords={"feature": np.arange(1)})
    for i in range(0, n, max(1, n // 1000)):  # a few markers set
        store.group["chunk_done"][i] = 1
    sampler = PeakSampler()
    base = _rss()
    t = time.perf_counter()
    todo = missing_chunks(store)
    seconds = time.perf_counter() - t
    peak = sampler.reset()
    sampler.stop()
    print(f"markers: {n} chunks ({len(todo)} missing) read in batches of {MARKER_BATCH} in {seconds:.1f} s; "
          f"RSS {base:.1f} MB before, peak {peak:.1f} MB (+{peak - base:.1f} MB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0, help="how long to repeat (default 3)")
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--chunk-size", type=int, default=10, help="samples per chunk (default 10: many chunks)")
    p.add_argument("--num-features", type=int, default=1000)
    p.add_argument("--scheduler", default="threads", help="threads, synchronous or processes")
    p.add_argument("--markers", type=int, default=0, help="also measure reading N done markers")
    p.add_argument("--workdir", default=None, help="where to write the stores (default: a temp dir)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if args.markers:
            markers(args.markers, Path(tmp))
        if args.minutes > 0:
            soak(args, Path(tmp))


if __name__ == "__main__":
    main()
