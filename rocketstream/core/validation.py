"""Input checks with messages that name the problem and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .kernels import MIN_LENGTH
from .parameters import MiniRocketParameters
from .tensors import is_tensor, is_torch_dtype

if TYPE_CHECKING:
    import torch

SHAPE_HINT = "(n_samples, n_channels, n_timepoints)"




def check_shape(shape: tuple[int, ...], what: str = "X") -> tuple[int, int, int]:
    """Check a 3-D (n, channels, length) shape with length >= 9; return it.

    Parameters
    ----------
    shape : tuple of int
        The shape to check.
    what : str, default "X"
        The input's name in messages.

    Returns
    -------
    n, channels, length : int

    Raises
    ------
    InputError
        Not 3-D, no channels, or fewer than 9 time points.
    """
    if len(shape) != 3:
        hint = " (for univariate data use X[:, None, :])" if len(shape) == 2 else ""
        raise InputError(f"{what} must be 3-D {SHAPE_HINT}, got {len(shape)}-D shape {tuple(shape)}{hint}")
    n, c, length = (int(s) for s in shape)
    if c < 1:
        raise InputError(f"{what} has no channels (shape {tuple(shape)}); expected {SHAPE_HINT}")
    if length < MIN_LENGTH:
        raise InputError(
            f"{what} has series of length {length}; MiniRocket needs at least {MIN_LENGTH} time points "
            "(pad shorter series, e.g. with zeros, to length 9)"
        )
    return n, c, length


def check_dtype(dtype: Any, what: str = "X") -> None:
    """Accept real integer or floating dtypes only.

    Parameters
    ----------
    dtype : numpy.dtype or torch.dtype
        The dtype to check.
    what : str, default "X"
        The input's name in messages.

    Raises
    ------
    InputError
        A bool, complex, string or object dtype.
    """
    if is_torch_dtype(dtype):  # then torch is loaded already
        import torch

        ok = dtype.is_floating_point or (not dtype.is_complex and dtype != torch.bool)
    else:
        dt = np.dtype(dtype)
        ok = dt.kind in "iuf"
    if not ok:
        raise InputError(f"{what} must hold real numbers (int or float), got dtype {dtype}; convert it first")


def check_finite(x: np.ndarray | torch.Tensor, what: str = "X") -> None:
    """Raise if ``x`` holds NaN or infinite values, naming the first bad sample.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        The values to check.
    what : str, default "X"
        The input's name in messages.

    Raises
    ------
    InputError
        ``x`` holds NaN or infinite values.
    """
    tensor = is_tensor(x)
    finite = x.isfinite() if tensor else np.isfinite(x)
    if bool(finite.all()):
        return
    bad = (~finite).reshape(finite.shape[0], -1).any(1) if finite.ndim else ~finite
    first = int(bad.nonzero()[0, 0]) if tensor else int(bad.nonzero()[0][0])
    count = int((~finite).sum())
    raise InputError(
        f"{what} contains {count} NaN or infinite value(s), first in sample {first}; "
        "fill or drop them before MiniRocket (it has no missing-value rule)"
    )


def check_against_model(shape: tuple[int, ...], params: MiniRocketParameters, what: str = "X") -> None:
    """The data must have the channel count and series length the model was fitted on.

    A variable-length model accepts any length.

    Parameters
    ----------
    shape : tuple of int
        Shape of the data, (n, channels, length).
    params : MiniRocketParameters
        The model.
    what : str, default "X"
        The input's name in messages.

    Raises
    ------
    InputError
        A bad shape (see :func:`check_shape`), another channel count, or another length.
    """
    _, c, length = check_shape(shape, what)
    if c != params.n_channels:
        raise InputError(
            f"{what} has {c} channels but the model was fitted on {params.n_channels}; "
            "transform data with the same channels, or fit a new model"
        )
    if length != params.length and not params.variable_length:
        raise InputError(
            f"{what} has series of length {length} but the model was fitted on length {params.length}; "
            "cut or pad the series to that length, or fit a new model"
        )


def as_float32_array(x: Any, what: str = "X") -> np.ndarray | torch.Tensor:
    """Validate an in-memory array (NumPy, torch or array-like) and return it as float32.

    Parameters
    ----------
    x : array-like or torch.Tensor
        (n, channels, length) real values.
    what : str, default "X"
        The input's name in messages.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A C-contiguous float32 NumPy array, or for a tensor a detached float32 tensor on its device.

    Raises
    ------
    InputError
        A bad shape or dtype, or NaN/Inf values.
    """
    if is_tensor(x):
        import torch

        check_dtype(x.dtype, what)
        check_shape(tuple(x.shape), what)
        x = x.detach().to(torch.float32)
        check_finite(x, what)
        return x
    arr = np.asarray(x)
    check_dtype(arr.dtype, what)
    check_shape(arr.shape, what)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(arr, what)
    return arr
