"""fit + transform + train + predict on a Dask cluster, from a Zarr store.

    python workflows/dask_cluster/run.py --scheduler tcp://host:8786   # an existing cluster
    python workflows/dask_cluster/run.py                               # starts a LocalCluster
    python workflows/dask_cluster/run.py --quick                       # small data (a smoke test)

Without ``--input`` a labelled synthetic store is written first (``rocketstream demo``'s data). The
workers open the stores themselves: on a remote cluster, put ``--workdir`` (and ``--input``) on a
filesystem every worker sees, or use object-store URLs.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    import dask.array as da
    from distributed import Client, LocalCluster

    from rocketstream.api.outofcore import fit, open_source, transform_to_zarr
    from rocketstream.api.predict import evaluate, load_labels, predict
    from rocketstream.heads import RidgeHead
    from rocketstream.synthetic import write_labelled_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                    help="address of a running Dask scheduler (default: start a LocalCluster)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    ap.add_argument("--input", default=None, metavar="STORE.zarr",
                    help="a Zarr store of (sample, channel, time) series (default: write a synthetic one)")
    ap.add_argument("--variable", default="X", help="array in --input (default X)")
    ap.add_argument("--labels", default=None, metavar="SPEC",
                    help="labels of --input, e.g. data.zarr:label (default: STORE:label)")
    ap.add_argument("--n-samples", type=int, default=2000, help="synthetic series (default 2000)")
    ap.add_argument("--length", type=int, default=500, help="synthetic series length (default 500)")
    ap.add_argument("--chunk-size", type=int, default=100, help="series per task (default 100)")
    ap.add_argument("--test-fraction", type=float, default=0.3, help="last share of the rows held out")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--quick", action="store_true", help="small synthetic data (a smoke test)")
    ap.add_argument("--workdir", default=None, help="where stores go (default: a temporary directory)")
    ap.add_argument("--overwrite", action="store_true", help="replace stores of a previous run in --workdir")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_samples, args.length, args.chunk_size = 240, 120, 40

    cluster = None
    if args.scheduler is None:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        address = cluster.scheduler_address
        print(f"no --scheduler given: started a LocalCluster ({args.workers} worker processes) at {address}")
    else:
        address = args.scheduler
    times: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rocketstream-cluster-") as tmp, \
                Client(address, timeout="30s") as client:  # the default client: every stage runs on it
            info = client.scheduler_info()
            n_threads = sum(w["nthreads"] for w in info["workers"].values())
            print(f"cluster {address}: {len(info['workers'])} workers, {n_threads} threads", flush=True)
            work = (Path(args.workdir) if args.workdir else Path(tmp)).absolute()
            work.mkdir(parents=True, exist_ok=True)
            source = args.input
            if source is None:
                if (work / "data.zarr").exists() and not args.overwrite:
                    raise SystemExit(f"{work / 'data.zarr'} exists; pass --overwrite to replace it, or "
                                     "--input to use it")
                if (work / "data.zarr").exists():
                    shutil.rmtree(work / "data.zarr")
                t0 = time.perf_counter()
                source = str(write_labelled_store(work / "data.zarr", args.n_samples, 3, args.length,
                                                   chunk_size=args.chunk_size, seed=args.seed))
                times["write data"] = time.perf_counter() - t0
            labels = load_labels(args.labels or f"{source}:label")
            arr = open_source(source, args.variable)
            n = arr.shape[0]
            n_train = n - int(round(args.test_fraction * n))
            x_train, x_test = arr[:n_train], arr[n_train:]
            print(f"data {source}: {n} series x {arr.shape[1]} channels x {arr.shape[2]} points; "
                  f"{n_train} train, {n - n_train} test", flush=True)

            t0 = time.perf_counter()
            params = fit(x_train, random_state=args.seed, scheduler=client)
            times["fit"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            feats = transform_to_zarr(x_train, params, work / "features.zarr", chunk_size=args.chunk_size,
                                      scheduler=client, overwrite=args.overwrite)
            times["transform"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", da.PerformanceWarning)
                head = RidgeHead().fit(feats, labels[:n_train])  # its passes run on the default client
            times["train"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            predict(x_test, params, head, work / "predictions.zarr", chunk_size=args.chunk_size,
                    scheduler=client, overwrite=args.overwrite)
            times["predict"] = time.perf_counter() - t0
            metrics = evaluate(work / "predictions.zarr", labels[n_train:])
    finally:
        if cluster is not None:
            cluster.close()
    for k, v in times.items():
        print(f"  {k:<12} {v:7.2f} s")
    rate = n_train / times["transform"]
    print(f"transform: {rate:.0f} series/s on the cluster; test accuracy {metrics['accuracy']:.4f}")
    result = {"scheduler": address, "started_local_cluster": cluster is not None, "n_train": int(n_train),
              "n_test": int(n - n_train), "accuracy": metrics["accuracy"], "transform_series_per_s": rate,
              "seconds": {k: round(v, 3) for k, v in times.items()},
              "fit_rows_read": params.extra.get("fit_rows_distinct"), "classes": metrics["classes"],
              "labels_seen": np.unique(labels).tolist()}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
