"""The ``.rocket`` accessor (issue 13, point 8): explicit signatures and docstrings, univariate (sample,
time) input, ``to_zarr`` returning the opened features, and ``open_features`` with NumPy coordinates
(``groupby("label")`` and ``where`` work at once; labels are ``<U`` strings)."""

from __future__ import annotations

import inspect
from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.delayed import Delayed

import rocketstream.api.xarray as rx  # registers the accessor
from rocketstream.api.features import open_features
from rocketstream.api.fit import fit as fit_source
from rocketstream.api.transform import run_transform
from rocketstream.core import InputError

GUNPOINT = (Path(__file__).resolve().parents[1] / ".venv/lib/python3.11/site-packages/aeon/datasets/data/"
            "GunPoint/GunPoint_TRAIN.ts")


@pytest.fixture(scope="module")
def gunpoint():
    """GunPoint's 50 training series (univariate, length 150) with labels '1'/'2' and a fitted model."""
    if not GUNPOINT.exists():
        pytest.skip("aeon's GunPoint .ts file is not installed")
    from aeon.datasets import load_from_ts_file

    x, y = load_from_ts_file(str(GUNPOINT))
    da = xr.DataArray(x[:, 0], dims=("sample", "time"), name="X",
                      coords={"sample": np.arange(100, 150), "label": ("sample", y)})
    params = rx.fit(da, num_features=336, random_state=4)
    return da, y, params


def _no_var_keyword(func) -> None:
    kinds = {p.kind for p in inspect.signature(func).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds, func
    doc = inspect.getdoc(func) or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert section in doc, (func, section)


def _names(func, drop=()) -> set[str]:
    return {n for n in inspect.signature(func).parameters if n not in ("self", *drop)}


def test_signatures_are_explicit_and_documented():
    da = xr.DataArray(np.zeros((2, 9)), dims=("sample", "time"))
    assert isinstance(da.rocket, rx.RocketAccessor)
    assert isinstance(xr.Dataset({"X": da}).rocket, rx.RocketAccessor)
    acc = rx.RocketAccessor
    for func in (acc.fit, acc.transform, acc.to_zarr, rx.fit, rx.transform, rx.transform_to_zarr):
        _no_var_keyword(func)
    assert inspect.getdoc(acc) and inspect.getdoc(acc.model)
    # the options mirror the library functions they call (Zarr-only options left out)
    assert _names(acc.fit) == _names(fit_source, ("source", "storage_options", "fill_missing"))
    assert _names(acc.to_zarr) == _names(run_transform, ("source", "fill_missing"))
    assert _names(acc.transform) == _names(rx.transform, ("obj",))
    assert _names(rx.fit, ("obj",)) == _names(acc.fit)
    assert _names(rx.transform_to_zarr, ("obj",)) == _names(acc.to_zarr)


def test_univariate_gets_a_channel_dim(tmp_path, gunpoint):
    da, _, params = gunpoint
    explicit = da.expand_dims(channel=1).transpose("sample", "channel", "time")
    assert params.n_channels == 1 and params.equals(explicit.rocket.fit(num_features=336, random_state=4))
    ref = explicit.rocket.transform(params).values
    assert np.array_equal(da.rocket.transform(params).values, ref)
    assert np.array_equal(da.rocket.to_zarr(params, tmp_path / "f.zarr").values, ref)
    # a Dataset's (sample, time) variable, found without variable= or named
    ds = xr.Dataset({"X": da.transpose("time", "sample"), "length": ("sample", np.full(50, 150))})
    assert np.array_equal(ds.rocket.transform(params).values, ref)
    assert ds.rocket.fit(variable="X", num_features=336, random_state=4).equals(params)
    # a scalar channel coordinate (as .sel leaves) becomes the channel's coordinate
    one = explicit.assign_coords(channel=["x"]).sel(channel="x")
    assert one.dims == ("sample", "time")
    assert np.array_equal(one.rocket.transform(params).values, ref)
    # other dims still get the clear error
    with pytest.raises(InputError, match=r"expected \('sample', 'channel', 'time'\), or \(sample, time\)"):
        da.rename(time="t").rocket.transform(params)
    with pytest.raises(InputError, match="expected"):
        da.expand_dims(extra=2).rocket.fit(num_features=336, random_state=4)


def test_to_zarr_returns_the_opened_features(tmp_path, gunpoint):
    da, _, params = gunpoint
    ref = da.rocket.transform(params)
    feats = da.rocket.to_zarr(params, tmp_path / "f.zarr", chunk_size=20)
    assert isinstance(feats, xr.DataArray) and isinstance(feats.data, dsa.Array)  # lazy
    assert feats.dims == ("sample", "feature") and feats.chunks == ((20, 20, 10), (336,))
    assert feats.dtype == np.float32 and np.array_equal(feats.values, ref.values)
    xr.testing.assert_identical(feats.coords.to_dataset(), ref.coords.to_dataset())
    assert feats.rocket.model.equals(params)
    xr.testing.assert_identical(feats, open_features(tmp_path / "f.zarr"))
    # compute=False: the graph that fills the store, as Dask's writers do
    graph = xr.Dataset({"X": da}).rocket.to_zarr(params, tmp_path / "g.zarr", variable="X", compute=False)
    assert isinstance(graph, Delayed)
    assert sorted(graph.compute()) == [0]
    assert np.array_equal(open_features(tmp_path / "g.zarr").values, ref.values)


def test_open_features_coords_are_numpy_and_groupby_works(tmp_path, gunpoint):
    da, y, params = gunpoint
    da.rocket.to_zarr(params, tmp_path / "f.zarr", chunk_size=20)
    # a per-sample array stored beside the features under any name (as a Zarr input's coordinates are)
    group = zarr.open_group(tmp_path / "f.zarr", mode="r+")
    group.create_array("subject", shape=(50,), dtype=str, dimension_names=("sample",))[:] = \
        np.array([f"s{i % 5}" for i in range(50)])
    feats = open_features(tmp_path / "f.zarr")
    assert isinstance(feats.data, dsa.Array)  # the data stays lazy...
    names = {"sample", "label", "subject", "feature", "dilation", "dilation_index", "kernel",
             "quantile_index", "padded", "combination"}
    assert set(feats.coords) == names
    for name in names:  # ...the coordinates are NumPy
        assert type(feats[name].data) is np.ndarray and feats[name].chunks is None, name
    ref = da.rocket.transform(params).values
    top = feats.groupby("label").max()
    assert list(top["label"].values) == ["1", "2"]
    assert np.array_equal(top.values, np.stack([ref[y == "1"].max(0), ref[y == "2"].max(0)]))
    mean = feats.groupby("label").mean()
    same_chunks = da.rocket.transform(params, chunk_size=20)
    assert np.array_equal(mean.values, same_chunks.groupby("label").mean().values)
    picked = feats.where(feats.label == "1", drop=True)
    assert np.array_equal(picked.values, ref[y == "1"])
    assert np.array_equal(picked["sample"].values, da["sample"].values[y == "1"])
    assert list(feats.groupby("subject").max()["subject"].values) == ["s0", "s1", "s2", "s3", "s4"]


def test_labels_are_plain_unicode(tmp_path, gunpoint):
    da, y, params = gunpoint
    # what xarray's Zarr v3 writer and reader make of string labels: StringDType, read lazily
    xr.Dataset({"X": da}, coords={"label": ("sample", y.astype(object))}).to_zarr(
        tmp_path / "in.zarr", zarr_format=3, consolidated=False)
    ds = xr.open_zarr(tmp_path / "in.zarr", consolidated=False)
    assert ds["label"].dtype.kind in "TO"
    stored = zarr.open_group(tmp_path / "in.zarr", mode="r")["label"][:]
    assert stored.dtype.kind in "TO"
    lazy = ds.rocket.transform(params)
    assert lazy["label"].dtype.kind == "U" and type(lazy["label"].data) is np.ndarray
    assert np.array_equal(lazy["label"].values, y)
    feats = ds.rocket.to_zarr(params, tmp_path / "f.zarr")
    assert feats["label"].dtype == np.dtype("<U1") and np.array_equal(feats["label"].values, y)
    assert zarr.open_group(tmp_path / "f.zarr", mode="r")["label"][:].dtype.kind in "TO"  # Zarr strings
    assert np.array_equal(feats.groupby("label").max().values, lazy.groupby("label").max().values)
