"""Transform to Zarr: bitwise equal to the in-memory transform on every scheduler and chunking,
safe overwrite/resume rules, and bounded worker memory on a real LocalCluster."""

from __future__ import annotations

import os
import threading
import time

import dask
import dask.array as da
import numpy as np
import psutil
import pytest
import zarr
from dask.array.utils import assert_eq
from distributed import Client, LocalCluster
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import open_features, run_transform, transform_to_zarr
from rocketstream.core import InputError, fit, transform
from rocketstream.graph import transform_array
from rocketstream.storage import FeatureStore


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    x = make_data(240, 2, 120, seed=1)
    path = write_zarr(tmp_path_factory.mktemp("in") / "x.zarr", x, 40)
    params = fit(x, num_features=336, random_state=4)
    return x, path, params, transform(x, params).cpu().numpy()


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="2GiB") as c, Client(c) as client:
        yield c, client


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
@pytest.mark.parametrize("chunk_size", [None, 25])
def test_local_schedulers_match_in_memory(tmp_path, data, scheduler, chunk_size):
    x, path, params, ref = data
    out = transform_to_zarr(path, params, tmp_path / "f.zarr", scheduler=scheduler, chunk_size=chunk_size,
                            progress=True)
    assert out.dtype == np.float32 and out.chunks == (chunk_size or 40, 336)
    assert np.array_equal(out[:], ref)
    assert FeatureStore.open(tmp_path / "f.zarr").is_complete()


def test_distributed_processes_match_in_memory(tmp_path, data, cluster):
    x, path, params, ref = data
    c, client = cluster
    a = transform_to_zarr(path, params, tmp_path / "a.zarr", scheduler=client, chunk_size=40, progress=True)
    b = transform_to_zarr(path, params, tmp_path / "b.zarr", scheduler=c.scheduler_address, chunk_size=17)
    d = transform_to_zarr(path, params, tmp_path / "d.zarr")  # None: picks up the active client
    for arr in (a, b, d):
        assert np.array_equal(arr[:], ref)
    assert b.chunks == (17, 336)
    worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids


def test_lazy_transform_and_compute_false(tmp_path, data):
    x, path, params, ref = data
    lazy = transform_array(da.from_array(x, chunks=(33, 2, 120)), params)
    assert_eq(lazy, ref)
    delayed = transform_to_zarr(path, params, tmp_path / "f.zarr", compute=False)
    assert not FeatureStore.open(tmp_path / "f.zarr").done().any()
    assert dask.compute(delayed, scheduler="threads")[0] == list(range(6))
    assert np.array_equal(open_features(tmp_path / "f.zarr").values, ref)


def test_existing_output_rules(tmp_path, data):
    x, path, params, ref = data
    out = tmp_path / "f.zarr"
    transform_to_zarr(path, params, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        transform_to_zarr(path, params, out)
    other = fit(x, num_features=336, random_state=5)
    with pytest.raises(ValueError, match="different model"):
        transform_to_zarr(path, other, out, resume=True)
    with pytest.raises(ValueError, match="exclude each other"):
        transform_to_zarr(path, params, out, resume=True, overwrite=True)
    with pytest.raises(ValueError, match="chunked by 40"):
        transform_to_zarr(path, params, out, resume=True, chunk_size=10)
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _, computed = run_transform(path, params, out, resume=True)
    assert computed == []
    transform_to_zarr(path, other, out, overwrite=True)
    assert np.array_equal(zarr.open_group(str(out))["features"][:], transform(x, other).cpu().numpy())


def test_bad_chunk_leaves_its_marker_unset(tmp_path, data):
    x, _, params, ref = data
    bad = x.copy()
    bad[130, 1, 7] = np.inf
    with pytest.raises(InputError, match=r"samples 120-159.*infinite"):
        transform_to_zarr(bad, params, tmp_path / "f.zarr", chunk_size=40, scheduler="synchronous")
    done = FeatureStore.open(tmp_path / "f.zarr").done()
    assert not done[3]
    with pytest.raises(ValueError, match="incomplete"):
        open_features(tmp_path / "f.zarr")
    with pytest.raises(InputError, match="channels"):
        transform_to_zarr(x[:, :1], params, tmp_path / "g.zarr")


def _rss_sampler(pids, stop, peaks):
    procs = [psutil.Process(p) for p in pids]
    while not stop.is_set():
        for p in procs:
            peaks[p.pid] = max(peaks.get(p.pid, 0), p.memory_info().rss)
        time.sleep(0.02)


@pytest.mark.slow
def test_worker_memory_is_bounded_by_chunk_not_dataset(tmp_path):
    """A worker's memory grows by well under a third of the dataset while transforming all of it
    (after a warm-up run that loads torch, zarr and the plan). See benchmarks/outofcore_memory.py
    for flat peak RSS at larger sizes."""
    n, length, chunk = 6000, 2000, 100
    z = zarr.create_array(str(tmp_path / "big.zarr"), shape=(n, 1, length), chunks=(chunk, 1, length),
                          dtype="float32")
    for s in range(0, n, 1000):
        z[s : s + 1000] = make_data(1000, 1, length, seed=s)
    dataset_bytes = n * length * 4  # 48 MB
    params = fit(make_data(50, 1, length), num_features=84, random_state=0)
    small = tmp_path / "warm.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="1GiB") as c, Client(c) as client:
        # the CPU engine, also on a machine with a GPU: a CUDA context alone would take much of these
        # workers' 1 GiB limit (on the H200 this test ran past its 200 s timeout)
        transform_to_zarr(make_data(1000, 1, length), params, small, scheduler=client, chunk_size=chunk,
                          device="cpu")
        pids = list(client.run(os.getpid).values())
        base = {p: psutil.Process(p).memory_info().rss for p in pids}
        stop, peaks = threading.Event(), {}
        sampler = threading.Thread(target=_rss_sampler, args=(pids, stop, peaks), daemon=True)
        sampler.start()
        out = transform_to_zarr(str(tmp_path / "big.zarr"), params, tmp_path / "f.zarr", scheduler=client,
                                device="cpu")
        stop.set()
        sampler.join()
    growth = max(peaks[p] - base[p] for p in pids)
    assert FeatureStore.open(tmp_path / "f.zarr").is_complete() and out.shape == (n, 84)
    assert growth < dataset_bytes / 3, f"worker grew {growth / 2**20:.1f} MiB for a 48 MB dataset"
