"""xarray in, xarray out: functions on (sample, channel, time) DataArrays (or a Dataset's variable), and
the ``.rocket`` accessor on DataArray and Dataset as a thin namespace over them
(``import rocketstream.api.xarray`` registers it; :func:`~rocketstream.api.features.open_features` does too).

Univariate series may come as (sample, time): they get a ``channel`` dimension of size 1 (see
:func:`~rocketstream.api.inputs.xarray_input`). The features keep the input's per-sample coordinates
(``sample``, ``label``, ``length``...) as NumPy arrays, strings as fixed-width ``<U``, so that
``feats.groupby("label")`` and ``feats.where(feats.label == x, drop=True)`` work without computing.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..core.parameters import MiniRocketParameters
from ..core.serialization import from_dict, to_dict
from ..core.serialization import load as load_model
from ..errors import InputError
from ..graph.source import as_dask_array
from ..graph.transform import transform_array
from ..storage.zarrstore import plain_strings
from .features import open_features
from .fit import fit as fit_source
from .inputs import DIMS, Lengths, xarray_input
from .transform import feature_coordinates, run_transform

if TYPE_CHECKING:
    import torch

MODEL_ATTR = "rocketstream_model"

XarrayObject = xr.DataArray | xr.Dataset


def fit(obj: XarrayObject, *, variable: str | None = None, num_features: int = 10_000,
        max_dilations_per_kernel: int = 32, random_state: int | np.random.RandomState | None = None,
        device: torch.device | str | None = None, memory_budget: int | None = None, scheduler: Any = None,
        lengths: Lengths = None, pad_short: bool = False) -> MiniRocketParameters:
    """Fit on a (sample, channel, time) DataArray, or a Dataset's variable, reading only the drawn rows.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Training series with dims sample, channel and time in any order, or sample and time (one channel).
    variable : str, optional
        The Dataset's variable (needed when it has several series variables); for a DataArray, its name.
    num_features : int, default 10000
        Requested feature count; the model makes ``84 * (num_features // 84)``.
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one (recorded in ``params.seed``).
    device : str or torch.device, optional
        Where the bias fit runs; None: CUDA where available, else the CPU.
    memory_budget : int, optional
        Bytes of drawn rows kept in memory, and per bias-fit step.
    scheduler : Any, optional
        Where the drawn rows are read (see :func:`rocketstream.api.fit.fit`).
    lengths : None, False or array-like
        Per-series lengths; None uses a Dataset's 1-D ``length`` variable if it has one, False ignores it
        (see :func:`~rocketstream.api.inputs.resolve_lengths`).
    pad_short : bool, default False
        Append zeros to drawn series shorter than 9 points instead of refusing them.

    Returns
    -------
    MiniRocketParameters
        The fitted model, with the variable's name as its recorded source.

    Raises
    ------
    InputError
        Other dims, a missing or ambiguous variable, or data that cannot be used (shape, dtype, NaN/Inf
        in a drawn row, bad lengths).

    Examples
    --------
    >>> import xarray as xr
    >>> from rocketstream.api.xarray import fit
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> fit(da, num_features=840, random_state=0).n_features_out
    840
    """
    return fit_source(obj, variable=variable, num_features=num_features,
                      max_dilations_per_kernel=max_dilations_per_kernel, random_state=random_state,
                      device=device, memory_budget=memory_budget, scheduler=scheduler, lengths=lengths,
                      pad_short=pad_short)


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


def _model(params: MiniRocketParameters | str | os.PathLike) -> MiniRocketParameters:
    return load_model(params) if isinstance(params, (str, os.PathLike)) else params


def transform(obj: XarrayObject, params: MiniRocketParameters | str | os.PathLike, *,
              variable: str | None = None, chunk_size: int | None = None,
              device: torch.device | str | None = None, memory_budget: int | None = None) -> xr.DataArray:
    """Lazy MiniRocket features of a (sample, channel, time) DataArray as a (sample, feature) DataArray.

    The input's coordinates along ``sample`` (index, labels, lengths...) are kept as NumPy arrays
    (strings as fixed-width ``<U``); feature coordinates are added; the model travels in
    ``attrs["rocketstream_model"]`` (JSON). The features are not computed until asked.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Series with dims sample, channel and time, or sample and time (one channel).
    params : MiniRocketParameters, str or os.PathLike
        A fitted fixed-length model, or its JSON file.
    variable : str, optional
        The Dataset's variable (needed when it has several series variables); for a DataArray, its name.
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
        Other dims, a missing or ambiguous variable, data that does not fit the model, or a
        variable-length model (use :func:`transform_to_zarr`, which takes lengths).

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
    params = _model(params)
    da, _ = xarray_input(obj, variable)
    arr = as_dask_array(da.data, "X")
    if chunk_size is not None:
        arr = arr.rechunk({0: int(chunk_size)})
    feats = transform_array(arr, params, device=device, memory_budget=memory_budget)
    coords: dict[str, Any] = {str(k): (v.dims, plain_strings(np.asarray(v.values)))
                              for k, v in da.coords.items() if set(v.dims) <= {"sample"}}
    coords.update(feature_coords(params))
    attrs = {MODEL_ATTR: json.dumps(to_dict(params)), "rocketstream_seed": int(params.seed)}
    name = f"{da.name}_features" if da.name is not None else "features"
    return xr.DataArray(feats, dims=("sample", "feature"), coords=coords, attrs=attrs, name=name)


def model_of(features: XarrayObject) -> MiniRocketParameters:
    """The model recorded on features made by rocketstream (from :func:`transform` or ``open_features``).

    Parameters
    ----------
    features : xarray.DataArray or xarray.Dataset
        Features made by rocketstream, or a Dataset holding one such variable.

    Returns
    -------
    MiniRocketParameters
        The model in ``attrs["rocketstream_model"]``, checksum verified.

    Raises
    ------
    InputError
        No model is recorded (or a Dataset records several).
    ModelFileError
        The recorded model is damaged.

    Examples
    --------
    >>> from rocketstream import open_features
    >>> from rocketstream.api.xarray import model_of
    >>> model_of(open_features("features.zarr")).n_features_out
    924
    """
    recorded = features.attrs.get(MODEL_ATTR)
    if recorded is None and isinstance(features, xr.Dataset):
        found = {v.attrs[MODEL_ATTR] for v in features.data_vars.values() if MODEL_ATTR in v.attrs}
        if len(found) > 1:
            raise InputError(f"the Dataset's variables record {len(found)} different models; ask the "
                             "variable: ds[name].rocket.model")
        recorded = found.pop() if found else None
    if recorded is None:
        raise InputError(f"the {type(features).__name__} has no {MODEL_ATTR!r} attribute; it was not made "
                         "by rocketstream")
    return from_dict(json.loads(recorded))


def transform_to_zarr(obj: XarrayObject, params: MiniRocketParameters | str | os.PathLike,
                      output: str | os.PathLike, *, variable: str | None = None,
                      chunk_size: int | None = None, resume: bool = False, overwrite: bool = False,
                      device: torch.device | str | None = None, memory_budget: int | None = None,
                      scheduler: Any = None, workers: int | None = None, progress: bool = False,
                      compute: bool = True, storage_options: dict[str, Any] | None = None,
                      verify: bool = True, retries: int = 2, lengths: Lengths = None,
                      append: bool = False) -> Any:
    """Resumable transform of a DataArray (or a Dataset's variable) into a features store, opened back
    as a lazy, verified DataArray.

    Runs :func:`rocketstream.api.transform.run_transform`; the input's per-sample coordinates (labels...)
    are stored beside the features, and the result is what
    :func:`~rocketstream.api.features.open_features` gives for the written store.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Series with dims sample, channel and time, or sample and time (one channel).
    params : MiniRocketParameters, str or os.PathLike
        A fitted model for the input's channels and length, or its JSON file.
    output : str or os.PathLike
        The features store to write (a local path in an existing directory, or an fsspec URL).
    variable : str, optional
        The Dataset's variable (needed when it has several series variables); for a DataArray, its name.
    chunk_size : int, optional
        Samples per task and per store chunk (default: the input's regular chunking, else about 64 MiB).
    resume : bool, default False
        Compute only the chunks not done yet (the same model and input).
    overwrite : bool, default False
        Replace an existing features store.
    device : str or torch.device, optional
        Where the tasks compute; None: each worker's GPU if it has one, else its CPU.
    memory_budget : int, optional
        Bytes per micro-batch step of the core transform.
    scheduler : Any, optional
        None (the current distributed client, else threads), "threads", "processes", "synchronous",
        an address or a Client.
    workers : int, optional
        Workers of a local scheduler.
    progress : bool, default False
        Show a progress bar.
    compute : bool, default True
        Run now; False creates the store and returns the Dask graph that fills it instead.
    storage_options : dict, optional
        fsspec options for an output URL.
    verify : bool, default True
        With ``resume``, verify the chunks already done first.
    retries : int, default 2
        Times missing chunks are resubmitted after lost workers.
    lengths : None, False or array-like
        Per-series lengths of a variable-length model (None: a Dataset's ``length`` variable, if any).
    append : bool, default False
        The series grew along samples since ``output`` was made from them: grow it, computing only the
        new rows (see :func:`rocketstream.api.transform.run_transform`).

    Returns
    -------
    xarray.DataArray or dask.delayed.Delayed
        The features as :func:`~rocketstream.api.features.open_features` opens the store: lazy float32
        (sample, feature), each chunk checked against its sha256 when read, with NumPy sample and
        feature coordinates and the model in ``attrs``. With ``compute=False``, a Delayed that writes
        the missing chunks and returns their indices (open the store with ``open_features`` once it ran).

    Raises
    ------
    InputError, FileExistsError, UnsafeOutputError, IdentityMismatchError, PreflightError, StoreLockedError
        As :func:`rocketstream.api.transform.run_transform` raises.

    Examples
    --------
    >>> import xarray as xr
    >>> from rocketstream.api.xarray import fit, transform_to_zarr
    >>> from rocketstream.synthetic import make_series
    >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
    >>> params = fit(da, num_features=840, random_state=0)
    >>> feats = transform_to_zarr(da, params, "features.zarr", chunk_size=50)
    >>> feats.dims, feats.chunks
    (('sample', 'feature'), ((50, 50), (840,)))
    """
    _, result = run_transform(obj, params, output, variable=variable, chunk_size=chunk_size, resume=resume,
                              overwrite=overwrite, device=device, memory_budget=memory_budget,
                              scheduler=scheduler, workers=workers, progress=progress, compute=compute,
                              storage_options=storage_options, verify=verify, retries=retries,
                              lengths=lengths, append=append)
    return open_features(output, storage_options=storage_options) if compute else result


class RocketAccessor:
    """``obj.rocket``: MiniRocket on a DataArray or Dataset of series, and the model of its features.

    Registered as ``.rocket`` on every DataArray and Dataset by ``import rocketstream.api.xarray``; each
    method calls the function of the same name in this module on the object (``to_zarr`` calls
    :func:`transform_to_zarr`). The series are (sample, channel, time) in any order, or (sample, time)
    for univariate data; a Dataset's variable is chosen with ``variable=`` when it has several.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The object (passed by xarray).

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

    def __init__(self, obj: XarrayObject) -> None:
        self._obj = obj

    def fit(self, *, variable: str | None = None, num_features: int = 10_000,
            max_dilations_per_kernel: int = 32, random_state: int | np.random.RandomState | None = None,
            device: torch.device | str | None = None, memory_budget: int | None = None, scheduler: Any = None,
            lengths: Lengths = None, pad_short: bool = False) -> MiniRocketParameters:
        """Fit MiniRocket on these series, reading only the drawn rows (see :func:`fit`).

        Parameters
        ----------
        variable : str, optional
            A Dataset's series variable (needed when it has several); for a DataArray, its name.
        num_features : int, default 10000
            Requested feature count; the model makes ``84 * (num_features // 84)``.
        max_dilations_per_kernel : int, default 32
            Cap on the number of dilations.
        random_state : int, numpy.random.RandomState or None
            Seed of the draws; None draws a fresh one (recorded in ``params.seed``).
        device : str or torch.device, optional
            Where the bias fit runs; None: CUDA where available, else the CPU.
        memory_budget : int, optional
            Bytes of drawn rows kept in memory, and per bias-fit step.
        scheduler : Any, optional
            Where the drawn rows are read.
        lengths : None, False or array-like
            Per-series lengths; None uses a Dataset's 1-D ``length`` variable if it has one.
        pad_short : bool, default False
            Append zeros to drawn series shorter than 9 points instead of refusing them.

        Returns
        -------
        MiniRocketParameters
            The fitted model.

        Raises
        ------
        InputError
            Other dims, a missing or ambiguous variable, or data that cannot be used.

        Examples
        --------
        >>> import xarray as xr
        >>> import rocketstream.api.xarray  # registers .rocket
        >>> from rocketstream.synthetic import make_series
        >>> da = xr.DataArray(make_series(100, 1, 120)[:, 0], dims=("sample", "time"))  # univariate
        >>> da.rocket.fit(num_features=840, random_state=0).n_channels
        1
        """
        return fit(self._obj, variable=variable, num_features=num_features,
                   max_dilations_per_kernel=max_dilations_per_kernel, random_state=random_state,
                   device=device, memory_budget=memory_budget, scheduler=scheduler, lengths=lengths,
                   pad_short=pad_short)

    def transform(self, params: MiniRocketParameters | str | os.PathLike, *, variable: str | None = None,
                  chunk_size: int | None = None, device: torch.device | str | None = None,
                  memory_budget: int | None = None) -> xr.DataArray:
        """Lazy features of these series as a (sample, feature) DataArray (see :func:`transform`).

        Parameters
        ----------
        params : MiniRocketParameters, str or os.PathLike
            A fitted fixed-length model, or its JSON file.
        variable : str, optional
            A Dataset's series variable (needed when it has several); for a DataArray, its name.
        chunk_size : int, optional
            Rechunk to this many samples per task.
        device : str or torch.device, optional
            Where each block is computed; None: CUDA where available, else the CPU.
        memory_budget : int, optional
            Bytes per micro-batch step.

        Returns
        -------
        xarray.DataArray
            Dask-backed float32 (sample, feature) with the sample coordinates (NumPy) and the feature
            coordinates; the model in ``attrs``.

        Raises
        ------
        InputError
            Other dims, a missing or ambiguous variable, data that does not fit the model, or a
            variable-length model.

        Examples
        --------
        >>> import numpy as np
        >>> import xarray as xr
        >>> import rocketstream.api.xarray  # registers .rocket
        >>> from rocketstream.synthetic import make_series
        >>> ds = xr.Dataset({"X": (("sample", "channel", "time"), make_series(100, 2, 120))},
        ...                 coords={"label": ("sample", np.array(["a", "b"] * 50))})
        >>> feats = ds.rocket.transform(ds.rocket.fit(num_features=840, random_state=0))
        >>> feats.groupby("label").mean().shape
        (2, 840)
        """
        return transform(self._obj, params, variable=variable, chunk_size=chunk_size, device=device,
                         memory_budget=memory_budget)

    def to_zarr(self, params: MiniRocketParameters | str | os.PathLike, output: str | os.PathLike, *,
                variable: str | None = None, chunk_size: int | None = None, resume: bool = False,
                overwrite: bool = False, device: torch.device | str | None = None,
                memory_budget: int | None = None, scheduler: Any = None, workers: int | None = None,
                progress: bool = False, compute: bool = True, storage_options: dict[str, Any] | None = None,
                verify: bool = True, retries: int = 2, lengths: Lengths = None, append: bool = False) -> Any:
        """Transform these series into the features store ``output`` and open it (see
        :func:`transform_to_zarr`).

        Parameters
        ----------
        params : MiniRocketParameters, str or os.PathLike
            A fitted model, or its JSON file.
        output : str or os.PathLike
            The features store to write (a local path in an existing directory, or an fsspec URL).
        variable : str, optional
            A Dataset's series variable (needed when it has several); for a DataArray, its name.
        chunk_size : int, optional
            Samples per task and per store chunk.
        resume : bool, default False
            Compute only the chunks not done yet (the same model and input).
        overwrite : bool, default False
            Replace an existing features store.
        device : str or torch.device, optional
            Where the tasks compute.
        memory_budget : int, optional
            Bytes per micro-batch step of the core transform.
        scheduler : Any, optional
            None (the current distributed client, else threads), a scheduler name, an address or a Client.
        workers : int, optional
            Workers of a local scheduler.
        progress : bool, default False
            Show a progress bar.
        compute : bool, default True
            Run now; False creates the store and returns the Dask graph that fills it.
        storage_options : dict, optional
            fsspec options for an output URL.
        verify : bool, default True
            With ``resume``, verify the chunks already done first.
        retries : int, default 2
            Times missing chunks are resubmitted after lost workers.
        lengths : None, False or array-like
            Per-series lengths of a variable-length model.
        append : bool, default False
            Grow ``output`` with these series, which grew along samples (see :func:`transform_to_zarr`).

        Returns
        -------
        xarray.DataArray or dask.delayed.Delayed
            The store as :func:`~rocketstream.api.features.open_features` opens it (lazy, verified,
            NumPy coordinates, the model in ``attrs``); with ``compute=False`` the Delayed that fills it.

        Raises
        ------
        InputError, FileExistsError, UnsafeOutputError, IdentityMismatchError, PreflightError
            As :func:`rocketstream.api.transform.run_transform` raises.
        StoreLockedError
            Another job is writing ``output``.

        Examples
        --------
        >>> import xarray as xr
        >>> import rocketstream.api.xarray  # registers .rocket
        >>> from rocketstream.synthetic import make_series
        >>> da = xr.DataArray(make_series(100, 2, 120), dims=("sample", "channel", "time"))
        >>> feats = da.rocket.to_zarr(da.rocket.fit(num_features=840, random_state=0), "features.zarr")
        >>> feats.dims, feats.shape
        (('sample', 'feature'), (100, 840))
        """
        return transform_to_zarr(self._obj, params, output, variable=variable, chunk_size=chunk_size,
                                 resume=resume, overwrite=overwrite, device=device,
                                 memory_budget=memory_budget, scheduler=scheduler, workers=workers,
                                 progress=progress, compute=compute, storage_options=storage_options,
                                 verify=verify, retries=retries, lengths=lengths, append=append)

    @property
    def model(self) -> MiniRocketParameters:
        """The model recorded on features made by rocketstream (see :func:`model_of`).

        Examples
        --------
        >>> from rocketstream import open_features
        >>> open_features("features.zarr").rocket.model.n_features_out
        924
        """
        return model_of(self._obj)


xr.register_dataarray_accessor("rocket")(RocketAccessor)
xr.register_dataset_accessor("rocket")(RocketAccessor)

__all__ = ["DIMS", "MODEL_ATTR", "RocketAccessor", "feature_coords", "fit", "model_of", "transform",
           "transform_to_zarr"]
