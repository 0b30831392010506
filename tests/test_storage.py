"""Storage layer: opening inputs, creating feature stores, markers and the overwrite rules."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.core import InputError
from rocketstream.storage import FeatureStore, open_input_array
from rocketstream.storage.features import write_chunk
from rocketstream.storage.locations import resolve
from rocketstream.storage.outputs import existing_output


def _create(path, overwrite=False, n=10, chunk=4):
    return FeatureStore.create(path, n_samples=n, n_features=5, chunk_size=chunk, meta={"model": {}},
                               feature_coords={"kernel": np.arange(5, dtype=np.int32)},
                               overwrite=overwrite)


def test_create_markers_and_write(tmp_path):
    store = _create(tmp_path / "f.zarr")
    assert store.n_chunks == 3 and store.bounds(2) == (8, 10)
    assert not store.done().any() and np.isnan(store.features[:]).all()
    write_chunk(store.path, None, 1, 4, np.ones((4, 5), np.float32))
    again = FeatureStore.open(tmp_path / "f.zarr")
    assert again.done().tolist() == [False, True, False]
    assert (again.features[4:8] == 1).all() and np.isnan(again.features[:4]).all()


def test_existing_output_is_never_overwritten_silently(tmp_path):
    path = tmp_path / "f.zarr"
    store = _create(path)
    write_chunk(store.path, None, 0, 0, np.full((4, 5), 7, np.float32))
    with pytest.raises(FileExistsError, match="overwrite"):
        _create(path)
    assert (FeatureStore.open(path).features[:4] == 7).all()
    fresh = _create(path, overwrite=True)
    assert not fresh.done().any()


def test_refuses_to_delete_a_directory_that_is_not_zarr(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a rocketstream store"):  # there, and not replaceable
        existing_output(resolve(d), "features")
    with pytest.raises(FileExistsError, match="is a directory that is not a rocketstream store; refusing"):
        _create(d, overwrite=True)
    assert (d / "notes.txt").read_text() == "keep me"


def test_open_rejects_foreign_group(tmp_path):
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    with pytest.raises(ValueError, match="not a rocketstream features store"):
        FeatureStore.open(tmp_path / "g.zarr")
    with pytest.raises(FileNotFoundError):
        FeatureStore.open(tmp_path / "missing.zarr")


def test_open_input_array_variants(tmp_path):
    x = make_data(20, 2, 30)
    plain = write_zarr(tmp_path / "a.zarr", x, 5)
    grouped = write_zarr(tmp_path / "g.zarr", x, 5, group_var="X")
    assert open_input_array(plain).shape == x.shape
    assert open_input_array(grouped).shape == x.shape  # the only 3-D array is picked
    assert open_input_array(grouped, "X").shape == x.shape
    with pytest.raises(InputError, match="'Y' not found.*X"):
        open_input_array(grouped, "Y")
    with pytest.raises(InputError, match="single Zarr array"):
        open_input_array(plain, "X")
    with pytest.raises(FileNotFoundError, match="input not found"):
        open_input_array(tmp_path / "nope.zarr")


def test_fsspec_url_round_trip():
    import fsspec

    from rocketstream.api.outofcore import open_features, transform_to_zarr
    from rocketstream.core import fit, transform

    x = make_data(30, 1, 40)
    fs = fsspec.filesystem("memory")
    fs.rm("/rs-test", recursive=True) if fs.exists("/rs-test") else None
    a = zarr.create_array("memory://rs-test/in.zarr", shape=x.shape, chunks=(10, 1, 40), dtype="float32")
    a[:] = x
    params = fit(x, num_features=84, random_state=0)
    transform_to_zarr("memory://rs-test/in.zarr", params, "memory://rs-test/out.zarr", scheduler="threads")
    got = open_features("memory://rs-test/out.zarr").values
    assert np.array_equal(got, transform(x, params).cpu().numpy())
