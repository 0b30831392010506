"""Fit out of core: plan on the input's shape, then read only the drawn rows."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.parameters import MiniRocketParameters
from ..core.variable import check_short
from ..errors import PreflightError
from ..graph.fit import fit_array, fit_array_variable
from ..graph.preflight import device_problem
from .inputs import Lengths, Source, resolve_input, resolve_lengths, rocketstream_version

if TYPE_CHECKING:
    import torch


def fit(
    source: Source,
    *,
    variable: str | None = None,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
    storage_options: dict[str, Any] | None = None,
    scheduler: Any = None,
    lengths: Lengths = None,
    pad_short: bool = False,
    fill_missing: bool = False,
) -> MiniRocketParameters:
    """Fit MiniRocket reading only the rows drawn for the fit (at most 84 per dilation).

    The drawn rows are in ``params.example_indices``; ``params.extra`` records source (credentials
    removed), variable, seed, rocketstream version and how many distinct rows were read.
    Unequal-length data (see :func:`resolve_lengths`) gets a variable-length model
    (:mod:`rocketstream.core.variable`).

    Parameters
    ----------
    source : Any
        Any input :func:`open_source` accepts.
    variable : str, optional
        The array inside a Zarr group or the variable of a Dataset.
    num_features : int, default 10000
        Requested feature count; the model makes ``84 * (num_features // 84)``.
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one (recorded in ``params.seed``).
    device : str or torch.device, optional
        Where the bias fit runs; None: CUDA where available, else the CPU (variable-length fits run on
        the CPU).
    memory_budget : int, optional
        Bytes of drawn rows kept in memory, and per bias-fit step.
    storage_options : dict, optional
        fsspec options for a URL.
    scheduler : Any, optional
        Where the drawn rows are read: None (the current distributed client, else threads), a scheduler
        name, an address or a Client.
    lengths : None, False or array-like
        Per-series lengths (see :func:`resolve_lengths`).
    pad_short : bool, default False
        Append zeros to drawn series shorter than 9 points instead of refusing them.
    fill_missing : bool, default False
        Read absent Zarr chunks as the fill value instead of raising.

    Returns
    -------
    MiniRocketParameters
        The fitted model.

    Raises
    ------
    FileNotFoundError
        Nothing at the path.
    InputError
        An input that cannot be used (shape, dtype, NaN/Inf in a drawn row, bad lengths) or a bad parameter.
    MissingChunkError
        A drawn row lies in an absent chunk of a Zarr input.

    Examples
    --------
    >>> from rocketstream import fit
    >>> from rocketstream.synthetic import make_series, write_zarr
    >>> path = write_zarr("data.zarr", make_series(1000, 3, 200), chunk_rows=250, group_var="X")
    >>> params = fit(path, variable="X", num_features=1000, random_state=0)
    >>> params.n_features_out, params.extra["fit_rows_distinct"]
    (924, 540)
    """
    problem = device_problem(device)  # fit runs here: a device this process lacks fails before any read
    if problem:
        raise PreflightError(f"device {device} cannot be used here: {problem}; pass --device cpu / "
                             "device='cpu' or leave it out")
    src = resolve_input(source, variable, storage_options, fill_missing)
    arr, desc = src.data, src.desc
    n, _, length = (int(s) for s in arr.shape)
    own = resolve_lengths(source, lengths, n, length, storage_options)
    if own is not None:
        check_short(own, pad_short)  # every series, not only the drawn ones: transform reads them all
    if own is None:  # (an address: graph.fit connects once for all the reads)
        params, gatherer = fit_array(arr, num_features, max_dilations_per_kernel, random_state, device,
                                     memory_budget, scheduler)
    else:
        params, gatherer = fit_array_variable(arr, own, num_features, max_dilations_per_kernel,
                                              random_state, memory_budget, scheduler, pad_short)
    extra = {**params.extra, **desc, "seed": params.seed, "rocketstream_version": rocketstream_version(),
             "fit_rows_read": int(gatherer.rows_read), "fit_rows_distinct": int(gatherer.unique.size)}
    return replace(params, extra=extra)
