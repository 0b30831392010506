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
from .inputs import xarray_input
from .transform import feature_coordinates

DIMS = outofcore.DIMS
MODEL_ATTR = "rocketstream_model"


def _as_input(da: xr.DataArray) -> xr.DataArray:
    return xarray_input(da, None)[0]


def fit(da: xr.DataArray, *, num_features: int = 10_000, max_dilations_per_kernel: int = 32,
        random_state: int | np.random.RandomState | None = None, device: torch.device | str | None = None,
        memory_budget: int | None = None) -> MiniRocketParameters:
    """Fit on a (sample, channel, time) DataArray, reading only the drawn rows.

    Parameters
    ----------
    da : xarray.DataArray
        Training series with dims sample, channel and time (in any order).
    num_features, max_dilations_per_kernel, random_state, device, memory_budget
        As in :func:`rocketstream.api.outofcore.fit`.

    Returns
    -------
    MiniRocketParameters
        The fitted model, with the DataArray's name as its recorded source.

    Raises
    ------
    InputError
        Other dims, or data that cannot be used (shape, dtype, NaN/Inf in a drawn row).

    Examples
    --------
    >>> import xarray as xr
    >>> from rocketstream.api.xarray import fit
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> fit(da, num_features=840, random_state=0).n_features_out
    840
    """
    return outofcore.fit(_as_input(da), num_features=num_features,
                         max_dilations_per_kernel=max_dilations_per_kernel, random_state=random_state,
                         device=device, memory_budget=memory_budget)


def feature_coords(params: MiniRocketParameters) -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates along ``feature``: index, dilation, dilation_index, kernel, quantile_index, padded,
    combination.

    Parameters
    ----------
    params : MiniRocketParameters
        The model.

    Returns
    -------
    dict
        ``name -> ("feature", values)``, ready for ``DataArray(coords=...)``; the index is ``feature``.
    """
    return {k: ("feature", v) for k, v in feature_coordinates(params).items()}


def transform(da: xr.DataArray, params: MiniRocketParameters, *, chunk_size: int | None = None,
              device: torch.device | str | None = None, memory_budget: int | None = None) -> xr.DataArray:
    """Lazy MiniRocket features of a (sample, channel, time) DataArray as a (sample, feature) DataArray.

    Coordinates along ``sample`` (e.g. labels) are kept; feature coordinates are added; the model
    travels in ``attrs["rocketstream_model"]`` (JSON). Nothing is computed until asked.

    Parameters
    ----------
    da : xarray.DataArray
        Series with dims sample, channel and time.
    params : MiniRocketParameters
        A fitted fixed-length model.
    chunk_size : int, optional
        Rechunk to this many samples per task (default: the DataArray's own chunking, else about 64 MiB).
    device : str or torch.device, optional
        Where each block is computed; None: CUDA where available, else the CPU.
    memory_budget : int, optional
        Bytes per micro-batch step.

    Returns
    -------
    xarray.DataArray
        Dask-backed float32 (sample, feature), named ``<name>_features`` (or ``features``).

    Raises
    ------
    InputError
        Other dims, data that does not fit the model, or a variable-length model (use
        :func:`transform_to_zarr` with lengths).

    Examples
    --------
    >>> import xarray as xr
    >>> from rocketstream.api.xarray import fit, transform
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> feats = transform(da, fit(da, num_features=840, random_state=0))
    >>> feats.dims, feats.shape
    (('sample', 'feature'), (100, 840))
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
    """The model recorded on a features DataArray (from :func:`transform` or ``open_features``).

    Parameters
    ----------
    features : xarray.DataArray
        Features made by rocketstream.

    Returns
    -------
    MiniRocketParameters
        The model in ``features.attrs["rocketstream_model"]``, checksum verified.

    Raises
    ------
    InputError
        The DataArray records no model.
    ModelFileError
        The recorded model is damaged.

    Examples
    --------
    >>> from rocketstream import open_features
    >>> from rocketstream.api.xarray import model_of
    >>> model_of(open_features("features.zarr")).n_features_out
    924
    """
    try:
        return from_dict(json.loads(features.attrs[MODEL_ATTR]))
    except KeyError:
        raise InputError(f"the DataArray has no {MODEL_ATTR!r} attribute; "
                         "it was not made by rocketstream") from None


def transform_to_zarr(da: xr.DataArray, params: MiniRocketParameters, output: str | os.PathLike,
                      **kwargs: Any) -> Any:
    """Resumable transform of a DataArray into a features store (see ``outofcore.transform_to_zarr``).

    Sample coordinates (labels...) are stored beside the features.

    Parameters
    ----------
    da : xarray.DataArray
        Series with dims sample, channel and time.
    params : MiniRocketParameters
        A fitted model.
    output : str or os.PathLike
        The features store to write.
    **kwargs
        Options of :func:`rocketstream.api.outofcore.transform_to_zarr` (chunk_size, resume, overwrite,
        scheduler, device...).

    Returns
    -------
    zarr.Array or dask.delayed.Delayed
        As :func:`rocketstream.api.outofcore.transform_to_zarr` returns.

    Raises
    ------
    InputError, FileExistsError, UnsafeOutputError, IdentityMismatchError, PreflightError, StoreLockedError
        As :func:`rocketstream.api.outofcore.transform_to_zarr` raises.

    Examples
    --------
    >>> import xarray as xr
    >>> from rocketstream.api.xarray import fit, transform_to_zarr
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> params = fit(da, num_features=840, random_state=0)
    >>> transform_to_zarr(da, params, "features.zarr", chunk_size=50).chunks
    (50, 840)
    """
    return outofcore.transform_to_zarr(_as_input(da), params, output, **kwargs)


@xr.register_dataarray_accessor("rocket")
class RocketAccessor:
    """``da.rocket.fit(...)``, ``da.rocket.transform(params)``, ``da.rocket.to_zarr(params, path)``.

    Registered on every DataArray by ``import rocketstream.api.xarray``; each method calls the function
    of the same name in this module on the DataArray.

    Parameters
    ----------
    obj : xarray.DataArray
        The DataArray (passed by xarray).

    Examples
    --------
    >>> import xarray as xr
    >>> import rocketstream.api.xarray  # registers .rocket
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> feats = da.rocket.transform(da.rocket.fit(num_features=840, random_state=0))
    >>> feats.shape, feats.rocket.model.n_features_out
    ((100, 840), 840)
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def fit(self, **kwargs: Any) -> MiniRocketParameters:
        """:func:`fit` on this DataArray.

        Parameters
        ----------
        **kwargs
            Options of :func:`fit`.

        Returns
        -------
        MiniRocketParameters
        """
        return fit(self._obj, **kwargs)

    def transform(self, params: MiniRocketParameters, **kwargs: Any) -> xr.DataArray:
        """:func:`transform` of this DataArray.

        Parameters
        ----------
        params : MiniRocketParameters
            A fitted model.
        **kwargs
            Options of :func:`transform`.

        Returns
        -------
        xarray.DataArray
        """
        return transform(self._obj, params, **kwargs)

    def to_zarr(self, params: MiniRocketParameters, output: str | os.PathLike, **kwargs: Any) -> Any:
        """:func:`transform_to_zarr` of this DataArray.

        Parameters
        ----------
        params : MiniRocketParameters
            A fitted model.
        output : str or os.PathLike
            The features store to write.
        **kwargs
            Options of :func:`transform_to_zarr`.

        Returns
        -------
        zarr.Array or dask.delayed.Delayed
        """
        return transform_to_zarr(self._obj, params, output, **kwargs)

    @property
    def model(self) -> MiniRocketParameters:
        """The model recorded on a features DataArray (see :func:`model_of`)."""
        return model_of(self._obj)


__all__ = ["RocketAccessor", "feature_coords", "fit", "model_of", "transform", "transform_to_zarr"]
