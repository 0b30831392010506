"""Save and load parameters as JSON with base64 arrays and a checksum: no pickle anywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelFileError
from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters, dilation_tables

FORMAT = "rocketstream.minirocket-parameters"
FORMAT_VERSION = 1

_SCALARS = ("n_channels", "length", "num_features", "max_dilations_per_kernel", "seed", "n_fit_examples")
_ARRAYS = {
    "dilations": np.int32,
    "features_per_dilation": np.int32,
    "channels_per_combination": np.int32,
    "channel_indices": np.int32,
    "example_indices": np.int64,
    "biases": np.float32,
}


def _encode(arr: np.ndarray, dtype: type) -> dict[str, Any]:
    a = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": np.dtype(dtype).str.lstrip("<>|="), "shape": list(a.shape),
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _decode(obj: Any, name: str, dtype: type) -> np.ndarray:
    try:
        want = np.dtype(dtype)
        if obj["dtype"] != want.str.lstrip("<>|="):
            raise ModelFileError(f"array {name!r} has dtype {obj['dtype']}, expected {want}")
        raw = base64.b64decode(obj["data"], validate=True)
        arr = np.frombuffer(raw, dtype=want.newbyteorder("<")).astype(want)
        return arr.reshape([int(s) for s in obj["shape"]])
    except ModelFileError:
        raise
    except Exception as exc:  # malformed base64, shape or structure
        raise ModelFileError(f"array {name!r} in the model is malformed ({exc})") from exc


def _checksum(body: dict[str, Any]) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canon).hexdigest()


def fingerprint_dict(obj: dict[str, Any]) -> str:
    """sha256 of what makes the features of a model dict (:func:`to_dict` output): every scalar and
    array, but not ``extra`` (provenance such as the source or the version), nor the checksum.

    Parameters
    ----------
    obj : dict
        A model dict.

    Returns
    -------
    str
        The hex digest.
    """
    body = {k: v for k, v in obj.items() if k not in ("sha256", "extra")}
    return _checksum(body)


def fingerprint(params: MiniRocketParameters) -> str:
    """The model's fingerprint: equal for two models that compute the same features.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.

    Returns
    -------
    str
        The hex sha256 of :func:`fingerprint_dict`.

    Raises
    ------
    InputError
        The model is not fitted.
    """
    return fingerprint_dict(to_dict(params))


def to_dict(params: MiniRocketParameters) -> dict[str, Any]:
    """A JSON-ready dict of the parameters with a format version and a sha256 checksum.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.

    Returns
    -------
    dict
        ``format``, ``format_version``, the scalars, ``arrays`` (base64, little-endian), ``extra`` and
        ``sha256`` (of everything else).

    Raises
    ------
    InputError
        The model is not fitted.
    """
    if params.biases is None:
        raise InputError("only fitted parameters (with biases) can be saved; fit the model first")
    body: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    body.update({s: int(getattr(params, s)) for s in _SCALARS})
    body["arrays"] = {k: _encode(getattr(params, k), dt) for k, dt in _ARRAYS.items()}
    body["extra"] = params.extra
    return {**body, "sha256": _checksum(body)}


def from_dict(obj: dict[str, Any]) -> MiniRocketParameters:
    """Rebuild parameters from :func:`to_dict` output, verifying checksum and consistency.

    Parameters
    ----------
    obj : dict
        A model dict.

    Returns
    -------
    MiniRocketParameters

    Raises
    ------
    ModelFileError
        Not a model dict, another format version, a checksum mismatch, a missing or malformed field, or
        arrays that do not follow from the scalars.
    """
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelFileError(f"not a rocketstream parameters file (expected format {FORMAT!r}); give a model "
                             "written by `rocketstream fit` / rocketstream.core.save")
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"parameters format version {version!r} is not supported (this rocketstream reads "
            f"version {FORMAT_VERSION}); refit or upgrade rocketstream"
        )
    body = {k: v for k, v in obj.items() if k != "sha256"}
    if obj.get("sha256") != _checksum(body):
        raise ModelFileError("parameters checksum mismatch: the model file was edited or corrupted; refit it")
    try:
        scalars = {s: int(obj[s]) for s in _SCALARS}
        arrays = {k: _decode(obj["arrays"][k], k, dt) for k, dt in _ARRAYS.items()}
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"model is missing or has a malformed field: {exc}") from exc
    params = MiniRocketParameters(**scalars, **arrays, extra=dict(obj.get("extra") or {}))
    _check_consistent(params)
    return params


def _check_consistent(p: MiniRocketParameters) -> None:
    """Schema checks beyond the checksum: derived arrays must agree with the scalars."""
    try:  # a model fitted on another platform may hold that platform's table (see dilation_tables)
        tables = dilation_tables(p.length, p.num_features, p.max_dilations_per_kernel)
    except ValueError as exc:
        raise ModelFileError(f"inconsistent model: {exc}") from exc
    dil, nfd = next(((d, f) for d, f in tables if np.array_equal(d, p.dilations)
                     and np.array_equal(f, p.features_per_dilation)), tables[0])
    n_comb = NUM_KERNELS * len(dil)
    problems = []
    if not (np.array_equal(dil, p.dilations) and np.array_equal(nfd, p.features_per_dilation)):
        problems.append("dilations do not follow from the length and feature count")
    if p.channels_per_combination.shape != (n_comb,) or p.example_indices.shape != (n_comb,):
        problems.append("wrong number of channel combinations or example indices")
    elif p.channel_indices.shape != (int(p.channels_per_combination.sum()),):
        problems.append("channel index count does not match the combinations")
    if p.channel_indices.size and (p.channel_indices.min() < 0 or p.channel_indices.max() >= p.n_channels):
        problems.append("channel indices out of range")
    if p.biases is None or p.biases.shape != (NUM_KERNELS * int(nfd.sum()),):
        problems.append("wrong number of biases")
    elif not np.isfinite(p.biases).all():
        problems.append("non-finite biases")
    if problems:
        raise ModelFileError("inconsistent model: " + "; ".join(problems))


def dumps(params: MiniRocketParameters) -> str:
    """The model file's text: :func:`to_dict` as indented JSON.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.

    Returns
    -------
    str

    Raises
    ------
    InputError
        The model is not fitted.
    """
    return json.dumps(to_dict(params), indent=1)


def save(params: MiniRocketParameters, path: str | os.PathLike) -> Path:
    """Write the parameters to ``path`` as JSON (atomically: a temporary sibling, then a rename).

    Refuses a ``path`` that exists and is not a regular file (a directory, a device): only a file is
    ever replaced. ``rocketstream fit`` writes through ``storage.outputs.write_file``, which also
    refuses to replace a file that is not a model and cleans up after killed runs.

    Parameters
    ----------
    params : MiniRocketParameters
        A fitted model.
    path : str or os.PathLike
        The file to write; its directory must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ModelFileError
        ``path`` exists and is not a regular file.
    InputError
        The model is not fitted.
    FileNotFoundError
        The directory of ``path`` does not exist.

    Examples
    --------
    >>> from rocketstream.core import fit, save
    >>> from rocketstream.synthetic import make_series
    >>> params = fit(make_series(50, 3, 120), num_features=1000, random_state=42)
    >>> save(params, "model.json")
    PosixPath('model.json')
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ModelFileError(f"{path} exists and is not a regular file; refusing to replace it: give a file "
                             "path for the model")
    text = dumps(params)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path: str | os.PathLike) -> MiniRocketParameters:
    """Read parameters written by :func:`save`; raises :class:`ModelFileError` on any damage.

    Parameters
    ----------
    path : str or os.PathLike
        The model file; it may start with ``~`` or ``file://``.

    Returns
    -------
    MiniRocketParameters

    Raises
    ------
    ModelFileError
        The file is missing, a directory, unreadable, not JSON, or not a valid model (see :func:`from_dict`).

    Examples
    --------
    >>> from rocketstream.core import load
    >>> params = load("model.json")
    >>> params.n_features_out, params.seed
    (924, 42)
    """
    text_path = os.fspath(path)
    text_path = text_path[len("file://"):] if text_path.startswith("file://") else text_path
    path = Path(text_path).expanduser()
    fix = "give the model .json file written by `rocketstream fit`"
    if path.is_dir():
        raise ModelFileError(f"model file {path} is a directory; {fix}")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}; {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file {path} ({exc}); {fix}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model file {path} is not valid JSON ({exc}); it may be truncated: {fix}"
                             ) from exc
    try:
        return from_dict(obj)
    except ModelFileError as exc:
        raise ModelFileError(f"model file {path}: {exc}") from exc
