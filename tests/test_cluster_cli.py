"""The CLI's everyday path, quiet and parallel, locally and on a real Dask cluster (issue 13).

* On a cluster: ``rocketstream transform`` and ``predict`` at a terminal (a pseudo-terminal, so progress
  is on by default) against a ``dask scheduler`` and two ``dask worker`` processes on loopback, started
  in another working directory, with relative paths: the results equal the local run's bit for bit,
  the chunks were computed by the workers, and the progress bar was drawn.
* Quiet: every command of the normal path (ingest of an aeon .ts file, fit, transform, train, predict,
  evaluate, info) runs with ``PYTHONWARNINGS=error`` and prints nothing on stderr when stderr is not a
  terminal (no warning, no progress bar); the stores it finishes open with ``xarray.open_zarr`` without
  a warning; ingest records the task.
* Progress on every scheduler: threads, synchronous, processes, a Client, a LocalCluster.
* Parallel: the automatic task size gives at least two tasks per worker (exact counts), the features
  do not depend on it, and a local run with default options runs one task per core at once.

The dataset is GunPoint from aeon's wheel. Waits have generous limits that only guard against hangs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import aeon
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client, LocalCluster
from helpers.cluster import Cluster
from helpers.data import make_data, write_zarr
from helpers.terminal import run_on_terminal

from rocketstream.api.outofcore import chunk_rows, run_transform
from rocketstream.api.predict import predict
from rocketstream.core import fit
from rocketstream.graph.schedule import local_workers, task_slots
from rocketstream.heads import RidgeHead
from rocketstream.ingest import read_numpy, write_collection
from rocketstream.ingest.writer import default_chunk, task_of

RS = Path(sys.executable).parent / "rocketstream"  # the venv's console script
GUNPOINT = Path(aeon.__file__).parent / "datasets" / "data" / "GunPoint"
QUIET = {"PYTHONWARNINGS": "error"}  # any warning is an error: the normal path has none


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``rocketstream ARGS`` in ``cwd``, stdin/stdout/stderr not terminals, warnings as errors."""
    return subprocess.run([str(RS), *args], cwd=cwd, env={**os.environ, **QUIET}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bytes of ``a``, for bitwise comparison (NaN included)."""
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> dict:
    """The normal path, run locally with relative paths in ``client/``: GunPoint TRAIN ingested at a
    terminal, TEST ingested not at one, then fit, transform, train, predict, evaluate and info."""
    work = tmp_path_factory.mktemp("client")
    runs: dict = {}
    runs["ingest-terminal"] = run_on_terminal([str(RS), "ingest", str(GUNPOINT / "GunPoint_TRAIN.ts"),
                                               "train.zarr"], cwd=work, env={**os.environ, **QUIET})
    steps = {
        "ingest": ["ingest", str(GUNPOINT / "GunPoint_TEST.ts"), "test.zarr"],
        "fit": ["fit", "train.zarr", "--variable", "X", "--model", "model.json", "--seed", "0"],
        "transform": ["transform", "train.zarr", "--variable", "X", "--model", "model.json", "--output",
                      "features.zarr"],
        "train": ["train", "features.zarr", "--labels", "train.zarr:label", "--output", "head.npz"],
        "predict": ["predict", "test.zarr", "--variable", "X", "--model", "model.json", "--head", "head.npz",
                    "--output", "pred.zarr"],
        "evaluate": ["evaluate", "pred.zarr", "--labels", "test.zarr:label", "--json"],
        "info-features": ["info", "features.zarr"],
        "info-model": ["info", "model.json"],
    }
    for name, args in steps.items():
        runs[name] = cli(args, work)
        assert runs[name].returncode == 0, (name, runs[name].stderr)
    return {"work": work, "runs": runs}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and two one-thread workers, the workers in a directory of their own, writing the
    audit log (which process wrote which chunk)."""
    root = tmp_path_factory.mktemp("cluster")
    (root / "workers").mkdir()
    c = Cluster(root, worker_cwd=root / "workers", env={"ROCKETSTREAM_AUDIT_LOG": str(root / "audit.log")})
    try:
        c.start_scheduler()
        c.start_worker()
        c.start_worker()
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()


def _writers(cluster: Cluster, store: Path) -> set[int]:
    lines = (json.loads(s) for s in (cluster.tmp / "audit.log").read_text().splitlines())
    return {e["pid"] for e in lines if e["event"] == "write" and Path(e["store"]) == store}


def _on_terminal_ok(rc: int, shown: str, job: str, chunks: int) -> None:
    assert rc == 0, shown
    assert f"{job}: 100%" in shown and f" {chunks}/{chunks} " in shown, shown  # the bar, full
    assert "warning" not in shown.lower() and "Traceback" not in shown, shown


# ------------------------------------------------------------------------------- on a cluster
def test_transform_on_cluster_at_terminal_matches_local(local, cluster):
    work = local["work"]
    rc, shown = run_on_terminal([str(RS), "transform", "train.zarr", "--variable", "X", "--model",
                                 "model.json", "--output", "cluster.zarr", "--chunk-size", "10",
                                 "--scheduler", cluster.address], cwd=work, env={**os.environ, **QUIET})
    _on_terminal_ok(rc, shown, "transform", 5)
    assert "wrote 50 x 9996 features to " + str(work / "cluster.zarr") in shown
    here = zarr.open_group(work / "features.zarr", mode="r")
    there = zarr.open_group(work / "cluster.zarr", mode="r")
    assert here.attrs["rocketstream"]["chunk_size"] != there.attrs["rocketstream"]["chunk_size"]
    np.testing.assert_array_equal(bits(there["features"][:]), bits(here["features"][:]))
    # the relative paths were resolved on the client: the workers wrote to the client's directory
    workers = {p.pid for p in cluster.procs[1:]}
    assert _writers(cluster, work / "cluster.zarr") <= workers
    assert len(_writers(cluster, work / "cluster.zarr")) >= 1
    assert not list((cluster.tmp / "workers").glob("*.zarr"))


def test_fit_on_cluster_reads_the_drawn_rows_there_and_matches_local(local, cluster):
    from distributed import Client

    from rocketstream.core.serialization import load as load_model

    work = local["work"]
    run = cli(["fit", "train.zarr", "--variable", "X", "--model", "cluster-model.json", "--seed", "0",
               "--scheduler", cluster.address], work)
    assert run.returncode == 0, run.stderr
    assert "fitted 9996 features on 50 x 1 x 150" in run.stdout
    assert load_model(work / "cluster-model.json").equals(load_model(work / "model.json"))
    with Client(cluster.address, timeout="20s") as client:  # the rows were read by the cluster's tasks
        prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "rows_of_chunk" in prefixes  # dask names the prefix without the underscore


def test_predict_on_cluster_at_terminal_matches_local(local, cluster):
    work = local["work"]
    # the local run's chunking (its default: the same as the cluster's on a CPU, larger where a GPU sizes
    # for one device): the ridge decisions come from BLAS, whose last bits depend on the number of rows
    # per call (the features themselves do not depend on the chunking)
    here = zarr.open_group(work / "pred.zarr", mode="r")
    size = str(here.attrs["rocketstream"]["chunk_size"])
    rc, shown = run_on_terminal([str(RS), "predict", "test.zarr", "--variable", "X", "--model", "model.json",
                                 "--head", "head.npz", "--output", "cluster-pred.zarr", "--chunk-size", size,
                                 "--scheduler", cluster.address], cwd=work, env={**os.environ, **QUIET})
    there = zarr.open_group(work / "cluster-pred.zarr", mode="r")
    n_chunks = there.attrs["rocketstream"]["n_chunks"]
    assert n_chunks == here.attrs["rocketstream"]["n_chunks"] >= 2
    _on_terminal_ok(rc, shown, "predict", n_chunks)
    assert "predicted 150 series (2 classes, ridge head)" in shown
    assert there["label"][:].tolist() == here["label"][:].tolist()
    np.testing.assert_array_equal(bits(there["decision"][:]), bits(here["decision"][:]))
    assert _writers(cluster, work / "cluster-pred.zarr") <= {p.pid for p in cluster.procs[1:]}
    assert not list((cluster.tmp / "workers").glob("*.zarr"))


@pytest.mark.parametrize("where", ["threads", "synchronous", "processes", "client", "local-cluster"])
def test_progress_on_every_scheduler(local, cluster, where, tmp_path, capsys):
    work = local["work"]

    def run(scheduler):
        run_transform(work / "train.zarr", work / "model.json", tmp_path / "f.zarr", variable="X",
                      chunk_size=10, scheduler=scheduler, progress=True)

    if where == "client":
        with Client(cluster.address, set_as_default=False, timeout="30s") as client:
            run(client)
    elif where == "local-cluster":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
                Client(lc, set_as_default=False) as client:
            run(client)
    else:
        run(where)
    err = capsys.readouterr().err
    assert "transform: 100%" in err and " 5/5 " in err, err
    np.testing.assert_array_equal(bits(zarr.open_group(tmp_path / "f.zarr", mode="r")["features"][:]),
                                  bits(zarr.open_group(work / "features.zarr", mode="r")["features"][:]))


# ---------------------------------------------------------------------------------------- quiet
def test_normal_path_prints_no_warning_and_no_bar_off_terminal(local):
    runs = local["runs"]
    for name, run in runs.items():
        if name == "ingest-terminal":
            continue
        assert run.stderr == "", (name, run.stderr)  # no warning (they are errors here), no bar
    assert runs["ingest"].stdout.startswith(f"wrote {local['work'] / 'test.zarr'}: 150 series x 1 channels")
    assert json.loads(runs["evaluate"].stdout)["n"] == 150


def test_ingest_at_terminal_shows_its_bar(local):
    rc, shown = local["runs"]["ingest-terminal"]
    assert rc == 0, shown
    assert "ingest: 100%" in shown and " 1/1 " in shown, shown
    assert "warning" not in shown.lower() and "Traceback" not in shown, shown


def test_stores_open_in_xarray_without_warnings_and_record_the_task(local):
    work = local["work"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = xr.open_zarr(work / "test.zarr")
        train = xr.open_zarr(work / "train.zarr")  # written chunk by chunk, at the terminal
        pred = xr.open_zarr(work / "pred.zarr")
        labels = np.array(test["label"].values.tolist())
        predicted = np.array(pred["label"].values.tolist())
    assert test.attrs["task"] == train.attrs["task"] == "classification"
    assert sorted(set(labels.tolist())) == ["1", "2"] and predicted.shape == (150,)


def test_ingest_records_regression_for_real_valued_targets(tmp_path):
    x = make_data(6, 1, 20, seed=1)
    for name, y, task in [("real", np.array([0.5, 1, 2, 3, 4, 5.0]), "regression"),
                          ("whole", np.array([1.0, 2, 1, 2, 1, 2]), "classification"),
                          ("ints", np.arange(6) % 2, "classification")]:
        np.savez(tmp_path / f"{name}.npz", X=x, y=y)
        out = write_collection(read_numpy(tmp_path / f"{name}.npz"), tmp_path / f"{name}.zarr")
        assert dict(zarr.open_group(out, mode="r").attrs)["task"] == task == task_of(y)
    assert task_of(np.array(["a", "b"])) == "classification"


# ------------------------------------------------------------------------------------- parallel
def test_default_task_size_gives_two_tasks_per_worker():
    params = fit(make_data(20, 3, 1000, seed=0), num_features=10_000, random_state=0)
    assert params.n_features_out == 9996
    rows = default_chunk(3, 1000)
    assert rows == 699  # ingest's 8 MiB chunks of 3 x 1000 float32 series
    shape = (12000, 3, 1000)  # the shape of the report: 32 MiB chunks made 5 tasks for 2 workers
    ingested = da.zeros(shape, chunks=(rows, 3, 1000), dtype=np.float32)
    old = da.zeros(shape, chunks=(2796, 3, 1000), dtype=np.float32)
    for arr, workers, want_rows, want_tasks in [(ingested, 1, 699, 18), (ingested, 2, 699, 18),
                                               (ingested, 9, 699, 18), (ingested, 10, 600, 20),
                                               (ingested, 16, 375, 32), (old, 2, 1398, 9), (old, 4, 1398, 9)]:
        with dask.config.set(num_workers=workers):
            got = chunk_rows(arr, params, None)
        assert (got, math.ceil(shape[0] / got)) == (want_rows, want_tasks), workers
        assert want_tasks >= 2 * workers
    tiny = da.zeros((50, 1, 150), chunks=(50, 1, 150), dtype=np.float32)  # not cut below 1 MiB per task
    with dask.config.set(num_workers=16):
        assert chunk_rows(tiny, params, None) == 26
    assert chunk_rows(ingested, params, 100) == 100  # asked for: as asked
    # short series: an 8 MiB input chunk of length-100 series would give 838 MB of features per task;
    # it is cut into 13 equal tasks of at most 64 MiB of features, whatever the number of series
    for n in (10**5, 10**6):
        short = da.zeros((n, 1, 100), chunks=(20971, 1, 100), dtype=np.float32)
        with dask.config.set(num_workers=2):
            assert chunk_rows(short, params, None) == 1614
    assert 1614 * 9996 * 4 <= 64 * 2**20


def test_default_run_cuts_ingested_chunks_and_keeps_the_features(tmp_path):
    x = make_data(1200, 3, 1000, seed=4)
    np.savez(tmp_path / "x.npz", X=x, y=np.arange(1200) % 2)
    src = write_collection(read_numpy(tmp_path / "x.npz"), tmp_path / "x.zarr")
    assert zarr.open_group(src, mode="r")["X"].chunks[0] == 699  # 2 chunks
    params = fit(x, num_features=1000, random_state=0)
    with dask.config.set(num_workers=2):  # the CPU's sizing, also where a GPU would size for one device
        store, chunks = run_transform(src, params, tmp_path / "auto.zarr", variable="X", device="cpu")
    assert (store.chunk_size, store.n_chunks, chunks) == (300, 4, [0, 1, 2, 3])
    whole, _ = run_transform(src, params, tmp_path / "whole.zarr", variable="X", chunk_size=1200)
    assert whole.n_chunks == 1
    np.testing.assert_array_equal(bits(store.features[:]), bits(whole.features[:]))


def test_automatic_task_size_counts_the_clusters_threads(tmp_path):
    # 2400 series in one input chunk: on a cluster of 3 workers x 2 threads, 2 tasks per thread are 12
    # tasks of 200 series, whatever this machine's cores; given the workers of a local run, the same
    x = make_data(2400, 1, 2000, seed=6)
    src = write_zarr(tmp_path / "x.zarr", x, 2400)
    params = fit(x[:200], num_features=840, random_state=0)
    with LocalCluster(n_workers=3, threads_per_worker=2, processes=False, dashboard_address=":0") as lc, \
            Client(lc, set_as_default=False) as client:
        store, chunks = run_transform(src, params, tmp_path / "c.zarr", scheduler=client)
        assert (store.chunk_size, len(chunks)) == (200, 12)
        head = RidgeHead().fit(store.features[:200], np.arange(200) % 2, model=params)
        group = predict(src, params, head, tmp_path / "p.zarr", scheduler=client)
        assert group["label"].chunks[0] == 200
        # on a GPU the threads of a process share its one device: tasks count processes, not threads
        assert (task_slots(client, None, "cuda"), task_slots(client, None, "cpu")) == (3, 6)
        assert task_slots(client) == 6  # each worker's own device: counted as the CPU's threads
    # the CPU's sizing, also on a machine with a GPU (where a local run sizes for its one device)
    local, _ = run_transform(src, params, tmp_path / "l.zarr", workers=3, device="cpu")
    assert local.chunk_size == 400  # 6 tasks for 3 local workers
    assert np.array_equal(bits(store.features[:]), bits(local.features[:]))
    assert (task_slots("threads", 3, "cpu"), task_slots("threads", 3, "cuda")) == (3, 1)
    assert chunk_rows(da.from_zarr(src), params, None, task_slots("threads", 3, "cuda")) == 1200  # 2 tasks


class _Gate:
    """A map_blocks function whose first ``parties`` calls wait until that many run at once (a barrier):
    a run with fewer threads than ``parties`` breaks it (``threading.BrokenBarrierError``)."""

    def __init__(self, parties: int, limit: float) -> None:
        self.barrier, self.limit = threading.Barrier(parties), limit
        self.lock, self.calls = threading.Lock(), 0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
            first = self.calls <= self.barrier.parties
        if first:
            self.barrier.wait(timeout=self.limit)  # a hang guard: all parties arrive at once or none
        return block


def test_local_default_run_uses_every_core(tmp_path):
    cores = local_workers()  # every core, unless Dask is told otherwise (DASK_NUM_WORKERS)
    assert cores == (dask.config.get("num_workers", None) or dask.system.CPU_COUNT) >= 1
    x = make_data(8 * 2 * cores, 1, 100, seed=5)  # 2 tasks per core
    src = write_zarr(tmp_path / "x.zarr", x, 8)
    params = fit(x, num_features=500, random_state=0)
    gate = _Gate(cores, limit=300)
    source = da.from_zarr(src).map_blocks(gate, meta=np.array((), dtype=np.float32))
    store, chunks = run_transform(source, params, tmp_path / "f.zarr")  # defaults: threads, every core
    assert (store.chunk_size, len(chunks)) == (8, 2 * cores)
    assert gate.calls == 2 * cores and not gate.barrier.broken
    if cores > 1:  # the gate can fail: one worker cannot bring all parties together
        one = _Gate(cores, limit=2)
        source = da.from_zarr(src).map_blocks(one, meta=np.array((), dtype=np.float32))
        with pytest.raises(threading.BrokenBarrierError):
            run_transform(source, params, tmp_path / "g.zarr", workers=1)
