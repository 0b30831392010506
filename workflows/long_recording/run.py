"""A long multichannel recording with an interval annotation table, cut into labelled windows and
classified out of core: recording (time-chunked Zarr) -> windows -> fit -> features store -> ridge ->
predictions store -> evaluation. Synthetic and seeded; nothing is downloaded.

    python workflows/long_recording/run.py            # 3 x 1,000,000 points
    python workflows/long_recording/run.py --quick    # 3 x 120,000 points (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: activity -> (frequency in cycles per 100 points, amplitude, harmonic weight) per channel pattern
ACTIVITIES = {"rest": (0.0, 0.0, 0.0), "walk": (1.0, 1.0, 0.3), "run": (1.5, 1.3, 0.5),
              "tremor": (6.0, 0.4, 0.0)}


def interval_table(n_time: int, seed: int, min_len: int, max_len: int) -> dict[str, np.ndarray]:
    """Consecutive annotated segments covering [0, n_time): columns start, end (exclusive), label."""
    rng = np.random.default_rng([seed, 1])
    names = list(ACTIVITIES)
    starts, ends, labels = [], [], []
    t, prev = 0, None
    while t < n_time:
        end = min(n_time, t + int(rng.integers(min_len, max_len + 1)))
        label = rng.choice([n for n in names if n != prev])
        starts.append(t)
        ends.append(end)
        labels.append(str(label))
        t, prev = end, label
    return {"start": np.array(starts, np.int64), "end": np.array(ends, np.int64), "label": np.array(labels)}


def render(a: int, b: int, table: dict[str, np.ndarray], channels: int, seed: int, block: int) -> np.ndarray:
    """The recording's points [a, b) (one storage chunk), deterministic in (seed, block)."""
    rng = np.random.default_rng([seed, 2, block])
    t = np.arange(a, b, dtype=np.float64)
    out = 1.0 * rng.standard_normal((channels, b - a))
    out += np.sin(2 * np.pi * t / 7919.0)  # slow baseline wander shared by all activities
    lo = np.searchsorted(table["end"], a, side="right")
    hi = np.searchsorted(table["start"], b, side="left")
    for i in range(lo, hi):
        s, e = max(a, int(table["start"][i])), min(b, int(table["end"][i]))
        freq, amp, harm = ACTIVITIES[str(table["label"][i])]
        if amp == 0:
            continue
        tt = t[s - a : e - a]
        for ch in range(channels):
            phase = 2 * np.pi * (ch / channels)
            w = 2 * np.pi * freq / 100.0
            out[ch, s - a : e - a] += amp * (np.sin(w * tt + phase) + harm * np.sin(2 * w * tt + 2 * phase))
    return out.astype(np.float32)


def write_recording(path: Path, n_time: int, channels: int, seed: int, time_chunk: int,
                    min_len: int, max_len: int, overwrite: bool = False) -> dict[str, np.ndarray]:
    """Write ``signal`` (channel, time) chunked along time, plus the interval table, to a Zarr group."""
    import zarr

    table = interval_table(n_time, seed, min_len, max_len)
    if path.exists() and not overwrite:
        raise SystemExit(f"{path} exists; pass --overwrite to replace it, or choose another --workdir")
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    sig = g.create_array("signal", shape=(channels, n_time), chunks=(channels, time_chunk), dtype="float32",
                         dimension_names=("channel", "time"))
    for k, a in enumerate(range(0, n_time, time_chunk)):
        b = min(n_time, a + time_chunk)
        sig[:, a:b] = render(a, b, table, channels, seed, k)
    for col in ("start", "end", "label"):
        values = table[col]
        arr = g.create_array(f"interval_{col}", shape=values.shape, dimension_names=("interval",),
                             dtype=str if values.dtype.kind == "U" else values.dtype)
        arr[:] = values
    return table


def labelled_windows(rec, table, length: int, stride: int, start: int, stop: int | None, chunk: int):
    """(windows of the labelled stretch, their labels): windows mostly inside one interval only."""
    from rocketstream.ingest.windows import labels_from_intervals, window_starts, windows

    starts = window_starts(rec.shape[1], length, stride, start, stop)
    labels = labels_from_intervals(starts, length, table, min_coverage=0.9, unlabelled=None)
    keep = np.flatnonzero(np.asarray([v is not None for v in labels]))
    x = windows(rec, length, stride, start=start, stop=stop, chunk_windows=chunk)[keep]
    return x.rechunk({0: chunk}), np.asarray(labels[keep]).astype(str)


def main(argv: list[str] | None = None) -> dict:
    import dask.array as da
    import zarr

    from rocketstream.api.outofcore import fit, transform_to_zarr
    from rocketstream.api.predict import evaluate, predict
    from rocketstream.heads import RidgeHead

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-time", type=int, default=1_000_000, help="points in the recording (default 1e6)")
    ap.add_argument("--channels", type=int, default=3, help="channels (default 3)")
    ap.add_argument("--window", type=int, default=400, help="window length in points (default 400)")
    ap.add_argument("--stride", type=int, default=400, help="window stride (default 400)")
    ap.add_argument("--time-chunk", type=int, default=2**16, help="recording chunk (default 65536)")
    ap.add_argument("--chunk-size", type=int, default=256, help="windows per task (default 256)")
    ap.add_argument("--train-fraction", type=float, default=0.7, help="share of the recording to train on")
    ap.add_argument("--seed", type=int, default=0, help="seed for the recording and the model (default 0)")
    ap.add_argument("--scheduler", default="threads", help="Dask scheduler (default threads)")
    ap.add_argument("--quick", action="store_true", help="a small recording (smoke test)")
    ap.add_argument("--workdir", default=None, help="where stores go (default: a temporary directory)")
    ap.add_argument("--overwrite", action="store_true", help="replace stores of a previous run in --workdir")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_time, args.window, args.stride, args.chunk_size = 120_000, 200, 200, 64
    seg = (20 * args.window, 60 * args.window)  # annotated segments of 20-60 windows

    with tempfile.TemporaryDirectory(prefix="rocketstream-rec-") as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rec_path = work / "recording.zarr"
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        table = write_recording(rec_path, args.n_time, args.channels, args.seed, args.time_chunk, *seg,
                                args.overwrite)
        times["write recording"] = time.perf_counter() - t0
        rec = da.from_zarr(zarr.open_group(str(rec_path), mode="r")["signal"])
        split = int(args.train_fraction * args.n_time)
        x_train, y_train = labelled_windows(rec, table, args.window, args.stride, 0, split, args.chunk_size)
        x_test, y_test = labelled_windows(rec, table, args.window, args.stride, split, None, args.chunk_size)
        print(f"recording {args.channels} x {args.n_time} points ({rec.nbytes / 1e6:.0f} MB, chunks of "
              f"{args.time_chunk} points), {len(table['start'])} annotated intervals; windows of "
              f"{args.window} every {args.stride}: {len(y_train)} train (before point {split}), "
              f"{len(y_test)} test", flush=True)

        t0 = time.perf_counter()
        params = fit(x_train, random_state=args.seed)
        times["fit"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        feats = transform_to_zarr(x_train, params, work / "features.zarr", chunk_size=args.chunk_size,
                                  scheduler=args.scheduler, overwrite=args.overwrite)
        times["transform"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # the ridge Gram pass rechunks on purpose
            warnings.simplefilter("ignore", da.PerformanceWarning)
            head = RidgeHead().fit(feats, y_train)
        times["train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict(x_test, params, head, work / "predictions.zarr", chunk_size=args.chunk_size,
                scheduler=args.scheduler, overwrite=args.overwrite)
        times["predict"] = time.perf_counter() - t0
        metrics = evaluate(work / "predictions.zarr", y_test)
    for k, v in times.items():
        print(f"  {k:<16} {v:7.2f} s")
    print(f"transform: {len(y_train) / times['transform']:.0f} windows/s; "
          f"test accuracy {metrics['accuracy']:.4f}")
    result = {"n_train": len(y_train), "n_test": len(y_test), "accuracy": metrics["accuracy"],
              "seconds": {k: round(v, 3) for k, v in times.items()}, "metrics": metrics}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
