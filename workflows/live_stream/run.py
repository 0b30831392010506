"""A live sensor stream classified as it lands: a writer process appends a synthetic (channel, time)
recording and its interval table to Zarr on a schedule; a follower process appends the features of its
new labelled windows; this process scores every new window with a head trained on an initial labelled
stretch, and reports throughput and latency (from a window's last point landing to its prediction
being written). Synthetic and seeded; nothing is downloaded.

    python workflows/live_stream/run.py            # 3 x (40,000 + 400,000) points, about a minute
    python workflows/live_stream/run.py --quick    # a smoke test
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: activity -> (frequency in cycles per 100 points, amplitude, harmonic weight)
ACTIVITIES = {"rest": (0.0, 0.0, 0.0), "walk": (1.0, 1.0, 0.3), "run": (1.5, 1.3, 0.5),
              "tremor": (6.0, 0.4, 0.0)}


def synthesize(n_time: int, channels: int, seed: int, seg: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """The whole recording (channels, n_time) float32 and its interval table (start, end, label)."""
    rng = np.random.default_rng([seed, 1])
    names, table, t, prev = list(ACTIVITIES), {"start": [], "end": [], "label": []}, 0, None
    while t < n_time:
        end = min(n_time, t + int(rng.integers(seg[0], seg[1] + 1)))
        label = str(rng.choice([n for n in names if n != prev]))
        table["start"].append(t)
        table["end"].append(end)
        table["label"].append(label)
        t, prev = end, label
    tt = np.arange(n_time, dtype=np.float64)
    out = np.random.default_rng([seed, 2]).standard_normal((channels, n_time))
    out += np.sin(2 * np.pi * tt / 7919.0)  # slow baseline wander
    for s, e, lab in zip(table["start"], table["end"], table["label"], strict=True):
        freq, amp, harm = ACTIVITIES[lab]
        w = 2 * np.pi * freq / 100.0
        for ch in range(channels):
            ph = 2 * np.pi * ch / channels
            out[ch, s:e] += amp * (np.sin(w * tt[s:e] + ph) + harm * np.sin(2 * w * tt[s:e] + 2 * ph))
    return out.astype(np.float32), {k: np.asarray(v) for k, v in table.items()}


def append_step(group, full: np.ndarray, table: dict, stop: int) -> None:
    """Grow the recording to ``stop`` points (resize, then write), then append the intervals that have
    ended by then (a labeller writes an interval once it is over)."""
    sig = group["signal"]
    sig.append(full[:, sig.shape[1] : stop], axis=1)
    have = group["interval_start"].shape[0]
    new = int(np.searchsorted(table["end"], stop, side="right"))
    for col in ("start", "end", "label"):
        if new > have:
            group[f"interval_{col}"].append(table[col][have:new])


def create(path: Path, channels: int, time_chunk: int, table: dict) -> None:
    """An empty recording (NaN fill: the complete-window rule is then exact) and interval arrays."""
    import zarr

    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    g.create_array("signal", shape=(channels, 0), chunks=(channels, time_chunk), dtype="float32",
                   fill_value=np.nan, dimension_names=("channel", "time"))
    for col in ("start", "end", "label"):
        g.create_array(f"interval_{col}", shape=(0,), chunks=(64,), dimension_names=("interval",),
                       dtype=str if table[col].dtype.kind == "U" else "int64",
                       fill_value="" if table[col].dtype.kind == "U" else -1)  # 0 is a real start


def writer(args: argparse.Namespace) -> None:
    """The writer process: the live part, ``--block`` points every ``--pause`` seconds; one JSON line
    ``{"time", "n_time"}`` per step once it is written."""
    import zarr

    full, table = synthesize(args.n_time, args.channels, args.seed, args.seg)
    g = zarr.open_group(args.workdir / "recording.zarr", mode="r+", use_consolidated=False)
    n = g["signal"].shape[1]
    with open(args.workdir / "writer.jsonl", "a") as log:
        while n < args.n_time:
            time.sleep(args.pause)
            n = min(args.n_time, n + args.block)
            append_step(g, full, table, n)
            log.write(json.dumps({"time": time.time(), "n_time": n}) + "\n")
            log.flush()


def options(args: argparse.Namespace) -> dict:
    return {"variable": "signal", "chunk_size": args.chunk_size, "scheduler": args.scheduler}


def follower(args: argparse.Namespace) -> None:
    """The features follower process: labelled windows' features appended as they land."""
    from rocketstream.ingest.recording import follow_recording

    report = follow_recording(args.workdir / "recording.zarr", str(args.workdir / "model.json"),
                              args.workdir / "features.zarr", args.window, args.stride, until=args.total,
                              poll=args.poll, intervals="interval_", **options(args))
    (args.workdir / "follower.json").write_text(json.dumps(
        {"reason": report.reason, "windows": report.windows, "throughput": report.throughput,
         "written": report.written}))


def latencies(starts: np.ndarray, length: int, steps: list[dict], written: list, first: int) -> np.ndarray:
    """Per window from ``first`` on: seconds from the writer step that landed its last point to the
    append that wrote it."""
    step_n = np.array([s["n_time"] for s in steps])
    step_t = np.array([s["time"] for s in steps])
    w_n = np.array([n for _, n in written])
    w_t = np.array([t for t, _ in written])
    ends = starts[first:] + length
    landed = step_t[np.searchsorted(step_n, ends, side="left")]
    done = w_t[np.searchsorted(w_n, np.arange(first, len(starts)) + 1, side="left")]
    return done - landed


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--initial", type=int, default=40_000, help="points written before the stream (training)")
    ap.add_argument("--live", type=int, default=400_000, help="points streamed after it")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--window", type=int, default=200, help="window length in points (default 200)")
    ap.add_argument("--stride", type=int, default=100, help="window stride (default 100)")
    ap.add_argument("--time-chunk", type=int, default=1000, help="recording chunk along time (default 1000)")
    ap.add_argument("--block", type=int, default=2345, help="points the writer appends per step")
    ap.add_argument("--pause", type=float, default=0.25, help="seconds between writer steps")
    ap.add_argument("--poll", type=float, default=0.2, help="followers' poll interval in seconds")
    ap.add_argument("--chunk-size", type=int, default=64, help="windows per task and store chunk")
    ap.add_argument("--num-features", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scheduler", default="threads")
    ap.add_argument("--quick", action="store_true", help="a small stream (smoke test)")
    ap.add_argument("--workdir", default=None, help="where stores go (default: a temporary directory)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--role", choices=("main", "writer", "follower"), default="main", help=argparse.SUPPRESS)
    ap.add_argument("--total", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.initial, args.live, args.num_features, args.pause = 20_000, 24_000, 2_000, 0.2
        args.window, args.stride, args.block = 100, 50, 2345
    args.n_time = args.initial + args.live
    args.seg = (10 * args.window, 30 * args.window)  # activities of 10-30 windows
    if args.role != "main":
        args.workdir = Path(args.workdir)
        (writer if args.role == "writer" else follower)(args)
        return {}
    with tempfile.TemporaryDirectory(prefix="rocketstream-live-") as tmp:
        args.workdir = Path(args.workdir) if args.workdir else Path(tmp)
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, argv or [])


def run(args: argparse.Namespace, argv: list[str]) -> dict:
    import zarr

    from rocketstream.api.features import open_features
    from rocketstream.api.fit import fit
    from rocketstream.api.predict import load_predictions
    from rocketstream.core import save
    from rocketstream.heads import RidgeHead
    from rocketstream.ingest.recording import append_recording, follow_recording, recording_windows
    from rocketstream.ingest.windows import labels_from_intervals, window_starts

    work = args.workdir
    for name in ("recording.zarr", "features.zarr", "predictions.zarr"):
        if (work / name).exists():
            raise SystemExit(f"{work / name} exists; choose an empty --workdir")
    full, table = synthesize(args.n_time, args.channels, args.seed, args.seg)
    create(work / "recording.zarr", args.channels, args.time_chunk, table)
    append_step(zarr.open_group(work / "recording.zarr", mode="r+", use_consolidated=False), full, table,
                args.initial)
    starts = window_starts(args.n_time, args.window, args.stride)
    args.total = len(starts)

    t0 = time.perf_counter()  # the initial labelled stretch: fit, features, head
    x0 = recording_windows(work / "recording.zarr", args.window, args.stride, variable="signal",
                           intervals="interval_", chunk_windows=args.chunk_size)
    params = fit(x0, num_features=args.num_features, random_state=args.seed)
    save(params, work / "model.json")
    n0, _ = append_recording(work / "recording.zarr", params, work / "features.zarr", args.window,
                             args.stride, intervals="interval_", **options(args))
    feats = open_features(work / "features.zarr")
    head = RidgeHead().fit(feats.data, feats["label"].values, model=params)
    t_train = time.perf_counter() - t0
    print(f"initial stretch {args.initial} points: {n0} labelled windows of {args.window} every "
          f"{args.stride}; fit + features + ridge {t_train:.1f} s", flush=True)

    common = [sys.executable, __file__, *argv, "--workdir", str(work), "--total", str(args.total)]
    procs = [subprocess.Popen([*common, "--role", role]) for role in ("writer", "follower")]
    try:
        report = follow_recording(work / "recording.zarr", params, work / "predictions.zarr", args.window,
                                  args.stride, head=head, until=args.total, poll=args.poll, **options(args))
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    steps = [json.loads(line) for line in (work / "writer.jsonl").read_text().splitlines()]
    fol = json.loads((work / "follower.json").read_text())
    first = n0  # windows complete before the stream began are not timed
    lat = latencies(starts, args.window, steps, report.written, first)
    pred = load_predictions(work / "predictions.zarr")
    truth = labels_from_intervals(starts, args.window, table)
    acc = float(np.mean(np.asarray(pred["label"].values).astype(str)[first:] == truth[first:].astype(str)))
    result = {"windows": args.total, "predicted": int(pred.sizes["sample"]), "features": fol["windows"],
              "live_windows": args.total - first, "writer_steps": len(steps), "exit_codes": codes,
              "predict_windows_per_s": round(report.throughput, 1),
              "features_windows_per_s": round(fol["throughput"], 1),
              "latency_s": {"p50": round(float(np.median(lat)), 3),
                            "p95": round(float(np.quantile(lat, 0.95)), 3),
                            "max": round(float(lat.max()), 3)},
              "accuracy_live": round(acc, 4), "stream_seconds": round(report.seconds, 1)}
    print(f"stream: {len(steps)} writer steps of {args.block} points every {args.pause} s; "
          f"{result['predicted']} of {args.total} windows predicted, {fol['windows']} with features")
    print(f"throughput: predict {result['predict_windows_per_s']} windows/s, features "
          f"{result['features_windows_per_s']} windows/s (of appending time)")
    print(f"latency (window landed -> prediction written) over {len(lat)} live windows: p50 "
          f"{result['latency_s']['p50']:.2f} s, p95 {result['latency_s']['p95']:.2f} s, max "
          f"{result['latency_s']['max']:.2f} s; live accuracy {acc:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if codes != [0, 0] or result["predicted"] != args.total or fol["windows"] != args.total:
        raise SystemExit(f"the stream did not finish: {result}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
