"""Fit from a subset: only the drawn rows' chunks are read, and the model equals the in-memory fit."""

from __future__ import annotations

import threading
import warnings

import dask.array as da
import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr
from zarr.storage import LocalStore, WrapperStore

from rocketstream.api.outofcore import fit, open_source
from rocketstream.core import InputError
from rocketstream.core import fit as core_fit


class CountingStore(WrapperStore):
    """A real LocalStore that records every key and byte read through ``get``."""

    def __init__(self, store):
        super().__init__(store)
        self.keys: list[str] = []
        self.nbytes = 0
        self._lock = threading.Lock()

    def _with_store(self, store):
        new = type(self)(store)
        new.keys, new._lock = self.keys, self._lock  # share the log across derived stores
        return new

    async def get(self, key, prototype, byte_range=None):
        buf = await super().get(key, prototype, byte_range)
        with self._lock:
            self.keys.append(key)
            self.nbytes += 0 if buf is None else len(buf)
        return buf

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        out = await super().get_partial_values(prototype, key_ranges)
        with self._lock:
            self.keys.extend(k for k, _ in key_ranges)
            self.nbytes += sum(len(b) for b in out if b is not None)
        return out


@pytest.fixture(scope="module")
def many_chunks(tmp_path_factory):
    """10000 series of length 50 in 1000 chunks of 10 rows."""
    x = make_data(10_000, 1, 50, seed=3)
    path = write_zarr(tmp_path_factory.mktemp("fit") / "big.zarr", x, 10)
    return x, path


def test_fit_reads_only_the_drawn_rows_chunks(many_chunks):
    x, path = many_chunks
    store = CountingStore(LocalStore(path, read_only=True))
    params = fit(zarr.open_array(store=store, mode="r"), num_features=84, random_state=11)
    chunk_keys = {k for k in store.keys if k.startswith("c/")}  # not metadata (zarr.json, .zarray)
    expected = {f"c/{i // 10}/0/0" for i in np.unique(params.example_indices)}
    assert chunk_keys == expected
    assert len(expected) <= 84 < 1000
    total = sum(f.stat().st_size for f in __import__("pathlib").Path(path, "c").rglob("*") if f.is_file())
    assert store.nbytes < 0.15 * total
    assert params.equals(core_fit(x, num_features=84, random_state=11))
    assert params.extra["fit_rows_distinct"] == len(np.unique(params.example_indices))


def test_fit_equals_in_memory_fit_for_every_input_kind(tmp_path):
    x = make_data(150, 3, 90)
    ref = core_fit(x, num_features=500, random_state=5)
    path = write_zarr(tmp_path / "x.zarr", x, 16)
    for source in (path, zarr.open_array(path), x, da.from_array(x, chunks=(7, 3, 90))):
        got = fit(source, num_features=500, random_state=5)
        assert got.equals(ref)
        assert np.array_equal(got.example_indices, ref.example_indices)
    prov = fit(path, num_features=500, random_state=5).extra
    assert prov["source"] == path and prov["seed"] == 5 and prov["rocketstream_version"]


def test_small_memory_budget_fetches_per_kernel_chunk_with_a_cache(tmp_path):
    x = make_data(300, 2, 100)
    ref = core_fit(x, num_features=500, random_state=2)
    row_bytes = 2 * 100 * 4
    got = fit(write_zarr(tmp_path / "x.zarr", x, 20), num_features=500, random_state=2,
              memory_budget=30 * row_bytes)
    assert got.equals(ref)
    distinct = got.extra["fit_rows_distinct"]
    assert distinct * row_bytes > 30 * row_bytes  # did not fit: the cached path ran
    assert got.extra["fit_rows_read"] == distinct  # steps grouped by the cache's window: each row read once


def test_time_chunked_input_is_rechunked_with_a_warning(tmp_path):
    x = make_data(40, 2, 60)
    path = write_zarr(tmp_path / "t.zarr", x, 10, time_chunk=20)
    with pytest.warns(UserWarning, match="rechunked to one chunk"):
        arr = open_source(path)
    assert arr.chunks[2] == (60,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit(path, num_features=84, random_state=0).equals(core_fit(x, num_features=84, random_state=0))


def test_nan_in_a_drawn_row_is_reported(tmp_path):
    x = make_data(20, 1, 30)
    x[:, 0, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fit(write_zarr(tmp_path / "n.zarr", x, 5), num_features=84, random_state=0)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 30), np.float32), "3-D"),
    (np.zeros((10, 1, 5), np.float32), "at least 9"),
    (np.array([[["a"] * 20]] * 3), "real numbers"),
])
def test_bad_inputs_are_loud(bad, match):
    with pytest.raises(InputError, match=match):
        open_source(bad)


def test_steps_by_window_cover_every_kernel_once_and_give_the_same_biases():
    from rocketstream.core.biases import _steps, fit_biases
    from rocketstream.core.parameters import plan

    x = make_data(40, 2, 120)
    params = plan(40, 2, 120, 1000, 32, 4)
    every = [(i, k) for i in range(len(params.dilations)) for k in range(84)]
    distinct = np.unique(params.example_indices)
    for chunk in (1, 5, 84):
        assert [(i, int(k)) for i, _, _, ks in _steps(params, chunk) for k in ks] == every
        for window in (1, 3, 1000):
            steps = _steps(params, chunk, window)
            pairs = [(i, int(k)) for i, _, _, ks in steps for k in ks]
            assert sorted(pairs) == every and all(len(ks) <= chunk for *_, ks in steps)
            # each step within one window of examples, the windows in order: a cache of `window`
            # rows reads every example once
            windows = [{int(np.searchsorted(distinct, params.example_indices[i * 84 + k])) // window
                        for k in ks} for i, _, _, ks in steps]
            assert all(len(w) == 1 for w in windows)
            order = [w.pop() for w in windows]
            assert order == sorted(order)
    ref = fit_biases(params, lambda idx: x[idx])
    for window in (1, 7):
        assert fit_biases(params, lambda idx: x[idx], window=window).equals(ref)


def test_graph_fit_takes_a_scheduler_address(tmp_path):
    """graph.fit connects to an address itself (dask.compute would refuse the string), also when the
    drawn rows are read on demand, and the model equals the local fit."""
    from distributed import LocalCluster

    from rocketstream.graph.fit import fit_array

    x = make_data(120, 2, 80)
    ref = core_fit(x, num_features=500, random_state=4)
    arr = open_source(write_zarr(tmp_path / "x.zarr", x, 10))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as lc:
        for budget in (None, 12 * 2 * 80 * 4):  # all drawn rows at once, or a small cache
            params, gatherer = fit_array(arr, 500, random_state=4, memory_budget=budget,
                                         scheduler=lc.scheduler_address)
            assert params.equals(ref) and gatherer.rows_read >= gatherer.unique.size
