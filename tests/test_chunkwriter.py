"""The task side of a chunk store: arrays opened once per process under the store's layout token, and a
store replaced or resized after the run was planned refused rather than written with a stale layout."""

from __future__ import annotations

import numpy as np
import pytest

from rocketstream.errors import StoreError
from rocketstream.storage import FeatureStore
from rocketstream.storage.chunkwriter import chunk_done, layout_token, task_arrays, write_chunk


def _create(path, n_features=5, n=10, chunk=4, overwrite=False):
    return FeatureStore.create(path, n_samples=n, n_features=n_features, chunk_size=chunk, meta={"model": {}},
                               feature_coords={"kernel": np.arange(n_features, dtype=np.int32)},
                               overwrite=overwrite)


def test_tasks_write_through_arrays_opened_once(tmp_path):
    store = _create(tmp_path / "f.zarr")
    token = layout_token(store.path, None)
    assert layout_token(store.path, None) == token  # the same store, the same token
    arrays = task_arrays(store.path, None, token)
    assert task_arrays(store.path, None, token) is arrays  # cached in this process
    assert task_arrays(store.path, None) is not arrays  # without a token: opened afresh
    block = np.arange(20, dtype=np.float32).reshape(4, 5)
    assert not chunk_done(store.path, None, 1, token)
    write_chunk(store.path, None, 1, 4, {"features": block}, bytes(range(32)), token)
    assert chunk_done(store.path, None, 1, token)  # the marker is read from the store, not cached
    again = FeatureStore.open(tmp_path / "f.zarr")
    assert again.done().tolist() == [False, True, False]
    np.testing.assert_array_equal(again.features[4:8], block)
    assert again.verify_chunk(1)
    assert bytes(np.asarray(again.group["input_sha256"][1])) == bytes(range(32))


def test_a_replaced_store_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "f.zarr"
    planned = layout_token(_create(path).path, None)
    fresh = _create(path, n_features=6, overwrite=True)  # replaced after the run was planned
    with pytest.raises(StoreError, match="changed while this job ran.*run the command again"):
        write_chunk(fresh.path, None, 0, 0, {"features": np.ones((4, 5), np.float32)}, None, planned)
    with pytest.raises(StoreError, match="changed while this job ran"):
        chunk_done(fresh.path, None, 0, planned)  # not taken for "not done"
    assert not FeatureStore.open(path).done().any()
    assert np.isnan(FeatureStore.open(path).features[:]).all()
    token = layout_token(fresh.path, None)  # a new run plans with the new layout and writes
    write_chunk(fresh.path, None, 0, 0, {"features": np.ones((4, 6), np.float32)}, None, token)
    assert FeatureStore.open(path).done().tolist() == [True, False, False]


def test_growing_a_store_changes_its_token(tmp_path):
    store = _create(tmp_path / "f.zarr")
    before = layout_token(store.path, None)  # a run planned before the growth
    store.grow(14, identity={"shape": [14, 1, 20]}, new_coords={})
    after = layout_token(store.path, None)
    assert after != before
    write_chunk(store.path, None, 3, 12, {"features": np.full((2, 5), 3, np.float32)}, None, after)
    grown = FeatureStore.open(tmp_path / "f.zarr")
    assert grown.n_samples == 14 and grown.done().tolist() == [False, False, False, True]
    assert (grown.features[12:14] == 3).all()
    with pytest.raises(StoreError, match="changed while this job ran"):  # its tasks refuse the grown store
        task_arrays(store.path, None, before)
