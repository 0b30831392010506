"""Model files on disk, with the same rules as every other output: checked before the work that makes
them, written atomically, never over an input or over anything but a model file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.parameters import MiniRocketParameters
from ..core.serialization import dumps
from ..storage.locations import Location, check_outputs, resolve
from ..storage.outputs import existing_output, write_file


def check_model_output(path: str | os.PathLike | Location, *, overwrite: bool = False,
                       inputs: Iterable[Any] = ()) -> Location:
    """Check that a model file may be written at ``path``, before anything is computed.

    Parameters
    ----------
    path : str, os.PathLike or Location
        The model file (JSON) to write.
    overwrite : bool, default False
        Allow replacing an existing model file (never anything else).
    inputs : iterable of paths
        Inputs the model file must not be, contain or lie inside.

    Returns
    -------
    Location
        The resolved location of the model file.

    Raises
    ------
    UnsafeOutputError
        ``path`` overlaps an input, or holds something that is not a model file.
    FileExistsError
        A model file is there and ``overwrite`` is false.
    FileNotFoundError
        Its directory does not exist.
    """
    out = resolve(path)
    check_outputs([("model file", out)], [("input", resolve(p)) for p in inputs
                                           if isinstance(p, (str, os.PathLike, Location))])
    if existing_output(out, "model") and not overwrite:
        raise FileExistsError(f"model file {out} already exists; pass --overwrite / overwrite=True to "
                              "replace it")
    return out


def save_model(params: MiniRocketParameters, path: str | os.PathLike | Location, *, overwrite: bool = False,
               inputs: Iterable[Any] = ()) -> Path:
    """Write a fitted model as JSON, atomically, after :func:`check_model_output`.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.
    path, overwrite, inputs
        As for :func:`check_model_output`.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> from rocketstream.api.models import save_model
    >>> save_model(params, "model.json", overwrite=True)  # doctest: +SKIP
    """
    out = check_model_output(path, overwrite=overwrite, inputs=inputs)
    text = dumps(params).encode()
    return write_file(out, lambda fh: fh.write(text), "model", overwrite=overwrite)




def model_info(params: MiniRocketParameters | str | os.PathLike) -> dict[str, Any]:
    """A summary of a model (or model file): shape it was fitted for, dilations, seed and provenance.

    Parameters
    ----------
    params : MiniRocketParameters, str or os.PathLike
        A fitted model or its JSON file.

    Returns
    -------
    dict
        ``n_channels``, ``length``, ``n_features``, ``dilations``, ``features_per_dilation``, ``seed``,
        ``n_fit_examples``, then the provenance recorded at fit time (source, rows read, version...).

    Raises
    ------
    ModelFileError
        The file is missing, damaged or not a model.
    """
    from ..core.serialization import load

    if not isinstance(params, MiniRocketParameters):
        params = load(params)
    return {
        "n_channels": params.n_channels,
        "length": params.length,
        "n_features": params.n_features_out,
        "dilations": params.dilations.tolist(),
        "features_per_dilation": params.features_per_dilation.tolist(),
        "seed": params.seed,
        "n_fit_examples": params.n_fit_examples,
        **params.extra,
    }


__all__ = ["check_model_output", "model_info", "save_model"]
