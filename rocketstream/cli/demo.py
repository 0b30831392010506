"""``rocketstream demo``: the main job, end to end and out of core on a synthetic labelled dataset.

Stages: write train/test Zarr stores chunk by chunk -> start a local dask.distributed cluster -> fit
(reading only the drawn rows) -> transform the training set on the cluster into a features store ->
train a head from that store -> predict the test set on the cluster -> evaluate -> report.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..synthetic import CLASS_NAMES, labelled_chunk, write_labelled_store
from .argtypes import positive_int
from .errors import UsageError

# The data generator lives in rocketstream.synthetic; its demo names stay importable from here.
synthetic_chunk = labelled_chunk
write_synthetic_store = write_labelled_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on a synthetic dataset",
                       description="The main job, out of core: write a labelled synthetic dataset of long "
                       "multivariate series to Zarr, fit MiniRocket (reading only the drawn rows), transform "
                       "on a local dask.distributed cluster, train a head from the features store, predict "
                       "the test split and report accuracy and throughput.")
    p.add_argument("--n-samples", type=positive_int, default=3000, help="series in total (default 3000)")
    p.add_argument("--length", type=positive_int, default=1000, help="points per series (default 1000)")
    p.add_argument("--channels", type=positive_int, default=3, help="channels per series (default 3)")
    p.add_argument("--classes", type=int, default=4, choices=range(2, len(CLASS_NAMES) + 1),
                   help="number of classes (default 4)")
    p.add_argument("--test-fraction", type=float, default=0.3, help="share of series in the test split")
    p.add_argument("--chunk-size", type=positive_int, default=100, help="series per task (default 100)")
    p.add_argument("--workers", type=positive_int, default=2, help="local worker processes (default 2)")
    p.add_argument("--head", choices=("ridge", "softmax"), default="ridge", help="head (default ridge)")
    p.add_argument("--epochs", type=positive_int, default=30, help="softmax head epochs (default 30)")
    p.add_argument("--num-features", type=positive_int, default=10_000, help="features (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed for the data and the model (default 0)")
    p.add_argument("--workdir", default="rocketstream-demo", metavar="DIR",
                   help="where runs go; each run writes a fresh DIR/run-NNN (default ./rocketstream-demo)")
    p.add_argument("--device", default=None, help="torch device for the transform (default: GPU if any)")
    p.set_defaults(handler=run)


def fresh_run_dir(workdir: str | Path) -> Path:
    """A new, empty ``workdir/run-NNN`` (never reuses or touches an existing run)."""
    root = Path(workdir).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--workdir {root} is a file; give a directory")
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[4:]) for p in root.glob("run-*") if p.name[4:].isdigit()]
    for k in range(max(taken, default=0) + 1, max(taken, default=0) + 1000):
        run_dir = root / f"run-{k:03d}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:  # a concurrent demo took it
            continue
    raise UsageError(f"cannot create a fresh run directory under {root}")  # pragma: no cover


class _Stages:
    """Wall-clock seconds per stage, printed as they finish."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn: Any, note: Any = None) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.seconds[name] = time.perf_counter() - t0
        extra = note(out, self.seconds[name]) if note else ""
        print(f"  {name:<10} {self.seconds[name]:7.2f} s  {extra}", flush=True)
        return out


def run(args: argparse.Namespace) -> int:
    from ..api.outofcore import fit, run_transform
    from ..api.predict import evaluate, format_metrics, load_labels, predict
    from ..core import save

    n, c, length = args.n_samples, args.channels, args.length
    if not 0.0 < args.test_fraction < 1.0:
        raise UsageError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    n_test = int(round(args.test_fraction * n))
    n_train = n - n_test
    if n_train < 2 * args.classes or n_test < 1:
        raise UsageError(f"--n-samples {n} is too small for {args.classes} classes and a test split; "
                         "use at least 20")
    if length < 9:
        raise UsageError(f"--length must be at least 9 (MiniRocket's shortest series), got {length}")
    run_dir = fresh_run_dir(args.workdir)
    paths = {k: run_dir / v for k, v in (("train", "train.zarr"), ("test", "test.zarr"),
                                         ("model", "model.json"), ("features", "features.zarr"),
                                         ("head", "head.npz"), ("predictions", "predictions.zarr"),
                                         ("report", "report.json"))}
    print(f"rocketstream demo: {n} series ({n_train} train, {n_test} test) x {c} channels x {length} "
          f"points, {args.classes} classes, seed {args.seed}\n  run directory: {run_dir}", flush=True)
    st = _Stages()
    st.run("data", lambda: [
        write_labelled_store(paths[s], m, c, length, chunk_size=args.chunk_size, seed=args.seed,
                              stream=k, n_classes=args.classes)
        for k, (s, m) in enumerate((("train", n_train), ("test", n_test)))],
        lambda _, dt: f"train.zarr + test.zarr, {n * c * length * 4 / 1e6:.0f} MB float32, "
                      f"chunks of {args.chunk_size} series")
    cluster, client = st.run("cluster", lambda: _start_cluster(args.workers), lambda cc, dt: (
        f"LocalCluster, {args.workers} worker processes x 1 thread at {cc[0].scheduler_address}"))
    try:
        with client:
            params = st.run("fit", lambda: fit(
                str(paths["train"]), variable="X", num_features=args.num_features, random_state=args.seed,
                device=args.device, scheduler="threads"),
                lambda p, dt: f"{p.n_features_out} features; read {p.extra.get('fit_rows_distinct')} of "
                              f"{n_train} training rows")
            save(params, paths["model"])
            store, _ = st.run("transform", lambda: run_transform(
                str(paths["train"]), params, paths["features"], variable="X", chunk_size=args.chunk_size,
                device=args.device, scheduler=client),
                lambda s, dt: f"{n_train} series in {s[0].n_chunks} chunks on the cluster: "
                              f"{n_train / dt:.0f} series/s")
            y_train = load_labels(f"{paths['train']}:label")
            head = st.run("train", lambda: _train_head(args, store.features, y_train, run_dir),
                          lambda h, dt: _head_note(h))
            head.save(paths["head"], overwrite=True)
            st.run("predict", lambda: predict(
                str(paths["test"]), params, head, paths["predictions"], variable="X",
                chunk_size=args.chunk_size, scheduler=client, device=args.device),
                lambda g, dt: f"{n_test} series (transform + head) on the cluster: "
                              f"{n_test / dt:.0f} series/s")
    finally:
        cluster.close()
    metrics = st.run("evaluate", lambda: evaluate(paths["predictions"], f"{paths['test']}:label",
                                                  verbose=False),
                     lambda m, dt: f"accuracy {m['accuracy']:.4f} on {m['n']} test series")
    total = sum(st.seconds.values())
    report = {
        "n_samples": n, "n_train": n_train, "n_test": n_test, "channels": c, "length": length,
        "classes": args.classes, "chunk_size": args.chunk_size, "workers": args.workers, "head": args.head,
        "seed": args.seed, "num_features": params.n_features_out,
        "fit_rows_read": params.extra.get("fit_rows_distinct"),
        "seconds": {k: round(v, 3) for k, v in st.seconds.items()}, "total_seconds": round(total, 3),
        "transform_series_per_s": round(n_train / st.seconds["transform"], 1),
        "predict_series_per_s": round(n_test / st.seconds["predict"], 1),
        "test_accuracy": metrics["accuracy"], "confusion_matrix": metrics["confusion_matrix"],
        "class_names": metrics["classes"], "run_dir": str(run_dir),
        "paths": {k: str(v) for k, v in paths.items()},
    }
    paths["report"].write_text(json.dumps(report, indent=1))
    print(format_metrics(metrics))
    print(f"transform throughput: {report['transform_series_per_s']:.0f} series/s "
          f"({c} x {length} points each); predict: {report['predict_series_per_s']:.0f} series/s; "
          f"total {total:.1f} s")
    print(f"test accuracy: {metrics['accuracy']:.4f}")
    print(f"report: {paths['report']}")
    return 0


def _warm() -> None:
    """Import torch and the transform on a worker, so the timed stages measure the work itself."""
    import rocketstream.graph.transform  # noqa: F401


def _start_cluster(workers: int) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
        client.run(_warm)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _train_head(args: argparse.Namespace, features: Any, labels: np.ndarray, run_dir: Path) -> Any:
    import warnings

    from dask.array import PerformanceWarning

    from ..heads import RidgeHead, train_softmax

    if args.head == "ridge":
        with warnings.catch_warnings():  # the Gram pass rechunks on purpose
            warnings.simplefilter("ignore", PerformanceWarning)
            return RidgeHead().fit(features, labels)
    return train_softmax(features, labels, checkpoint_dir=run_dir / "head_checkpoint", epochs=args.epochs,
                         lr=1e-3, seed=args.seed, validation_fraction=0.1)


def _head_note(head: Any) -> str:
    info = head.info()
    if head.kind == "ridge":
        return f"ridge from the features store, alpha {info['alpha']:.3g} (leave-one-out)"
    return f"softmax from the features store, {len(head.history_.get('epoch', []))} epochs, " \
           f"best {info['best_epoch']}"
