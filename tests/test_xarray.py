"""xarray in, xarray out: the .rocket accessor, coordinates kept, Zarr round trips."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers.data import make_data

import rocketstream.api.xarray as rx  # registers the accessor
from rocketstream.api.outofcore import open_features
from rocketstream.core import InputError, fit, transform


@pytest.fixture(scope="module")
def labelled():
    x = make_data(90, 3, 80, seed=2)
    da = xr.DataArray(
        x, dims=("sample", "channel", "time"), name="X",
        coords={"sample": np.arange(1000, 1090), "channel": ["ax", "ay", "az"], "time": np.arange(80) * 0.01,
                "label": ("sample", np.arange(90) % 3)},
    ).chunk({"sample": 25})
    params = fit(x, num_features=336, random_state=9)
    return da, params, transform(x, params).cpu().numpy()


def test_accessor_transform_is_lazy_and_keeps_coords(labelled):
    da, params, ref = labelled
    feats = da.rocket.transform(params)
    assert feats.dims == ("sample", "feature") and feats.chunks is not None  # lazy (dask)
    assert np.array_equal(feats.values, ref)
    xr.testing.assert_identical(feats["sample"], da["sample"])
    xr.testing.assert_identical(feats["label"], da["label"])
    table = params.feature_table()
    for name in ("dilation", "kernel", "quantile_index", "padded"):
        assert np.array_equal(feats[name].values, table[name])
    assert "channel" not in feats.coords and "time" not in feats.coords
    assert feats.rocket.model.equals(params)


def test_any_dim_order_and_datasets(labelled):
    da, params, ref = labelled
    assert np.array_equal(rx.transform(da.transpose("time", "sample", "channel"), params).values, ref)
    ds = xr.Dataset({"X": da, "other": ("sample", np.zeros(90))})
    assert np.array_equal(_via_open_source(ds, params), ref)


def _via_open_source(ds, params):
    from rocketstream.api.outofcore import open_source

    return transform(open_source(ds, "X").compute(), params).cpu().numpy()


def test_fit_via_accessor_equals_core(labelled):
    da, params, _ = labelled
    assert da.rocket.fit(num_features=336, random_state=9).equals(params)


def test_to_zarr_open_zarr_round_trip(tmp_path, labelled):
    da, params, _ = labelled
    feats = da.rocket.transform(params)
    feats.to_dataset().to_zarr(tmp_path / "lazy.zarr", mode="w-", consolidated=False)
    back = xr.open_zarr(tmp_path / "lazy.zarr", consolidated=False)[feats.name]
    xr.testing.assert_identical(back.compute(), feats.compute())


def test_features_store_opens_as_the_same_dataarray(tmp_path, labelled):
    da, params, ref = labelled
    da.rocket.to_zarr(params, tmp_path / "f.zarr", scheduler="threads")
    stored = open_features(tmp_path / "f.zarr")
    lazy = da.rocket.transform(params)
    assert np.array_equal(stored.values, ref)
    xr.testing.assert_identical(stored["sample"], lazy["sample"])
    names = ("feature", "dilation", "dilation_index", "kernel", "quantile_index", "padded", "combination")
    for name in names:
        xr.testing.assert_identical(stored[name].compute(), lazy[name])
    assert stored.rocket.model.equals(params)


def test_bad_dims_are_loud(labelled):
    da, params, _ = labelled
    with pytest.raises(InputError, match="expected \\('sample', 'channel', 'time'\\)"):
        da.rename(channel="chan").rocket.transform(params)
