"""xarray in, xarray out: functions on (sample, channel, time) DataArrays, and the ``.rocket``
accessor as a thin namespace over them (``import rocketstream.api.xarray`` registers it)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..core.parameters import MiniRocketParameters
from ..core.serialization import from_dict, to_dict
from ..errors import InputError
from ..graph.source import as_dask_array
from ..graph.transform import transform_array
from . import outofcore

DIMS = outofcore.DIMS
MODEL_ATTR = "rocketstream_model"


def _as_input(da: xr.DataArray) -> xr.DataArray:
    return outofcore._xarray_array(da, None)[0]


def fit(da: xr.DataArray, *, num_features: int = 10_000, max_dilations_per_kernel: int = 32,
        random_state: int | np.random.RandomState | None = None, device: torch.device | str | None = None,
        memory_budget: int | None = None) -> MiniRocketParameters:
    """Fit on a (sample, channel, time) DataArray, reading only the drawn rows."""
    return outofcore.fit(_as_input(da), num_features=num_features,
                         max_dilations_per_kernel=max_dilations_per_kernel, random_state=random_state,
                         device=device, memory_budget=memory_budget)


def feature_coords(params: MiniRocketParameters) -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates along ``feature``: index, dilation, dilation_index, kernel, quantile_index, padded,
    combination."""
    return {k: ("feature", v) for k, v in outofcore._feature_coords(params).items()}


def transform(da: xr.DataArray, params: MiniRocketParameters, *, chunk_size: int | None = None,
              device: torch.device | str | None = None, memory_budget: int | None = None) -> xr.DataArray:
    """Lazy MiniRocket features of a (sample, channel, time) DataArray as a (sample, feature) DataArray.

    Coordinates along ``sample`` (e.g. labels) are kept; feature coordinates are added; the model
    travels in ``attrs["rocketstream_model"]`` (JSON). Nothing is computed until asked.
    """
    da = _as_input(da)
    arr = as_dask_array(da.data, "X")
    if chunk_size is not None:
        arr = arr.rechunk({0: int(chunk_size)})
    feats = transform_array(arr, params, device=device, memory_budget=memory_budget)
    coords: dict[str, Any] = {k: v for k, v in da.coords.items() if set(v.dims) <= {"sample"}}
    coords.update(feature_coords(params))
    attrs = {MODEL_ATTR: json.dumps(to_dict(params)), "rocketstream_seed": int(params.seed)}
    name = f"{da.name}_features" if da.name is not None else "features"
    return xr.DataArray(feats, dims=("sample", "feature"), coords=coords, attrs=attrs, name=name)


def model_of(features: xr.DataArray) -> MiniRocketParameters:
    """The model recorded on a features DataArray (from :func:`transform` or ``open_features``)."""
    try:
        return from_dict(json.loads(features.attrs[MODEL_ATTR]))
    except KeyError:
        raise InputError(f"the DataArray has no {MODEL_ATTR!r} attribute; "
                         "it was not made by rocketstream") from None


def transform_to_zarr(da: xr.DataArray, params: MiniRocketParameters, output: str | os.PathLike,
                      **kwargs: Any) -> Any:
    """Resumable transform of a DataArray into a features store (see ``outofcore.transform_to_zarr``)."""
    return outofcore.transform_to_zarr(_as_input(da), params, output, **kwargs)


@xr.register_dataarray_accessor("rocket")
class RocketAccessor:
    """``da.rocket.fit(...)``, ``da.rocket.transform(params)``, ``da.rocket.to_zarr(params, path)``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def fit(self, **kwargs: Any) -> MiniRocketParameters:
        return fit(self._obj, **kwargs)

    def transform(self, params: MiniRocketParameters, **kwargs: Any) -> xr.DataArray:
        return transform(self._obj, params, **kwargs)

    def to_zarr(self, params: MiniRocketParameters, output: str | os.PathLike, **kwargs: Any) -> Any:
        return transform_to_zarr(self._obj, params, output, **kwargs)

    @property
    def model(self) -> MiniRocketParameters:
        """The model recorded on a features DataArray."""
        return model_of(self._obj)


__all__ = ["RocketAccessor", "feature_coords", "fit", "model_of", "transform", "transform_to_zarr"]
