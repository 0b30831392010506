"""The cost curve of the whole pipeline: fit, transform, train and predict against the number of series n
and against the series length L, on 1 and on 2 threads: throughput and peak RSS, as a table and a plot.

    python benchmarks/cost_curve.py                                   # the full curve (long: see below)
    python benchmarks/cost_curve.py --n 1000 10000 --lengths 100 10000 --threads 2   # a quick look
    python benchmarks/cost_curve.py --data /big/disk/rs-cost --png benchmarks/cost_curve.png

Data: synthetic labelled series (:func:`rocketstream.synthetic.write_labelled_store`, 4 classes,
1 channel), written once per shape into ``--data`` and reused by later runs. The n curve uses length
``--n-length`` (default 100); the L curve uses ``max(20, 1e7 // L)`` series of each length, so that
every point holds at least ten million points (a second or more of work). Input chunks hold about
8 MiB, as ``ingest`` writes them.

Every step runs in a fresh process pinned to the first ``t`` CPUs (``os.sched_setaffinity``; BLAS and
OpenMP told the same), with default options otherwise, and reports its own wall time and peak RSS
(``ru_maxrss``) and the RSS after its imports. Steps: ``fit`` (from the input store), ``transform``
(input store -> features store), ``train`` (``train_head``, head ``auto``: ridge below 10,000 series,
softmax above, run for ``--epochs`` epochs so its cost is per epoch), ``predict`` (input store ->
predictions store; the transform again plus the head). Throughput is series per second (series x
epochs for softmax training). The features store of the largest n takes about 20 GB of disk at
10,000 features, and the whole default curve about an hour per thread count on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

STEPS = ("fit", "transform", "train", "predict")
CHUNK_BYTES = 8 * 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _chunk_rows(channels: int, length: int) -> int:
    return max(1, CHUNK_BYTES // (4 * channels * length))


def dataset(root: Path, n: int, length: int) -> Path:
    """The input store of ``n`` series of ``length`` (written once, then reused)."""
    from rocketstream.synthetic import write_labelled_store

    path = root / f"in-{n}x1x{length}.zarr"
    done = path / ".complete"
    if not done.exists():
        shutil.rmtree(path, ignore_errors=True)
        t = time.perf_counter()
        write_labelled_store(path, n, 1, length, chunk_size=min(n, _chunk_rows(1, length)), seed=0)
        done.write_text("")
        print(f"  wrote {path.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def child(step: str, work: Path, src: Path, epochs: int) -> dict:
    """Run one step in this process; return its wall time and memory."""
    from rocketstream import fit, predict, transform_to_zarr
    from rocketstream.api.train import train_head
    from rocketstream.core import load, save

    base = _rss_mb()
    model, feats = work / "model.json", work / "features.zarr"
    head, preds = work / "head.npz", work / "pred.zarr"
    t = time.perf_counter()
    kind = ""
    if step == "fit":
        save(fit(str(src), variable="X", random_state=0), model)
    elif step == "transform":
        transform_to_zarr(str(src), load(model), str(feats), variable="X", overwrite=True)
    elif step == "train":
        trained = train_head(str(feats), output=head, overwrite=True, epochs=epochs)
        kind = type(trained).__name__
    elif step == "predict":
        predict(str(src), load(model), str(head), str(preds), variable="X", overwrite=True)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "base_mb": base, "head": kind}


def run_point(src: Path, n: int, length: int, threads: int, work: Path, epochs: int) -> dict:
    """Every step on one dataset with ``threads`` CPUs, each in a fresh pinned process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    row = {"n": n, "length": length, "threads": threads}
    for step in STEPS:
        cmd = [sys.executable, __file__, "--child", step, "--work", str(work), "--src", str(src),
               "--epochs", str(epochs), "--threads", str(threads)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{step} failed at n={n} L={length}:\n{done.stderr[-3000:]}")
        res = json.loads(done.stdout.strip().splitlines()[-1])
        rate_n = n * (epochs if res["head"] == "SoftmaxHead" else 1)
        row[step] = {**res, "per_s": rate_n / res["seconds"]}
        print(f"  n={n} L={length} t={threads} {step}: {res['seconds']:.1f} s, peak {res['peak_mb']:.0f} MB"
              f"{' (' + res['head'] + ')' if res['head'] else ''}", file=sys.stderr)
    stored = (f.stat().st_size for f in (work / "features.zarr").rglob("*") if f.is_file())
    row["features_gb"] = sum(stored) / 1e9
    row["load"] = os.getloadavg()[0]
    shutil.rmtree(work, ignore_errors=True)
    return row


def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def table(rows: list[dict], key: str) -> str:
    head = (f"| {key} | threads | fit s | " + " | ".join(f"{s} series/s" for s in STEPS[1:]) + " | "
            + " | ".join(f"{s} peak MB" for s in STEPS) + " | train head | features on disk GB | load |")
    lines = [head, "|" + "---:|" * (2 + 2 * len(STEPS)) + "---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r[key]} | {r['threads']} | {r['fit']['seconds']:.1f} | "
                     + " | ".join(_rate(r[s]["per_s"]) for s in STEPS[1:])
                     + " | " + " | ".join(f"{r[s]['peak_mb']:.0f}" for s in STEPS)
                     + f" | {r['train']['head'].replace('Head', '').lower()} | {r['features_gb']:.2f} | "
                     + f"{r['load']:.1f} |")
    return "\n".join(lines)


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for col, (key, rows) in enumerate(curves.items()):
        for threads in sorted({r["threads"] for r in rows}):
            sel = sorted((r for r in rows if r["threads"] == threads), key=lambda r: r[key])
            if not sel:
                continue
            xs = [r[key] for r in sel]
            for i, (s, marker) in enumerate(zip(STEPS, "os^d", strict=True)):
                style = {"marker": marker, "color": f"C{i}", "label": f"{s}, {threads} thr",
                         "linestyle": "-" if threads == max(r["threads"] for r in rows) else "--"}
                if s != "fit":  # fit reads a fixed-size sample: its cost is in seconds, in the table
                    axes[0, col].plot(xs, [r[s]["per_s"] for r in sel], **style)
                axes[1, col].plot(xs, [r[s]["peak_mb"] for r in sel], **style)
        name = "number of series n" if key == "n" else "series length L"
        for row, what in ((0, "series per second"), (1, "peak RSS (MB)")):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_yscale("log" if row == 0 else "linear")
            ax.set_xlabel(name)
            ax.set_ylabel(what)
            ax.grid(True, which="both", alpha=0.3)
        axes[1, col].legend(fontsize=7, ncol=2)
    fig.suptitle("rocketstream pipeline cost (synthetic, 1 channel, 9,996 features)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", nargs="+", type=lambda v: int(float(v)), default=[10**3, 10**4, 10**5, 10**6])
    ap.add_argument("--n-length", type=int, default=100)
    ap.add_argument("--lengths", nargs="+", type=lambda v: int(float(v)),
                    default=[10**2, 10**3, 10**4, 10**5, 10**6, 10**7])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--epochs", type=int, default=2, help="softmax epochs per training run (default 2)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/rocketstream-cost-curve"))
    ap.add_argument("--json", type=Path, default=None,
                    help="results file; points already in it are kept and not run again")
    ap.add_argument("--png", type=Path, default=Path(__file__).with_name("cost_curve.png"))
    ap.add_argument("--child", choices=STEPS, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads[0]])
        print(json.dumps(child(args.child, args.work, args.src, args.epochs)))
        return
    args.data.mkdir(parents=True, exist_ok=True)
    work = args.data / "work"
    curves: dict[str, list[dict]] = {"n": [], "length": []}
    if args.json and args.json.exists():  # resume: the points measured already are kept, not rerun
        curves.update(json.loads(args.json.read_text()))
    points = [("n", n, args.n_length) for n in args.n]
    points += [("length", max(20, 10**7 // length), length) for length in args.lengths]
    for key, n, length in points:
        for threads in args.threads:
            if any((r["n"], r["length"], r["threads"]) == (n, length, threads) for r in curves[key]):
                continue
            src = dataset(args.data, n, length)
            curves[key].append(run_point(src, n, length, threads, work, args.epochs))
            if args.json:
                args.json.write_text(json.dumps(curves, indent=1))
    for key, rows in curves.items():
        rows.sort(key=lambda r: (r["threads"], r[key]))
    cpus = len(os.sched_getaffinity(0))
    print(f"{cpus} CPUs, load average {os.getloadavg()[0]:.1f}; softmax trained {args.epochs} epochs")
    for key, rows in curves.items():
        if rows:
            print()
            print(table(rows, key))
    plot(curves, args.png)
    print(f"\nplot: {args.png}")


if __name__ == "__main__":
    main()
