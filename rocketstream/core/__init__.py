"""Layer 1: exact MiniRocket in pure torch + NumPy (no Dask, Zarr or xarray).

torch is imported where it computes, not here: on the CPU the native engine fits and transforms NumPy
arrays without it (see :mod:`.transform`, :mod:`.tensors`)."""

from .biases import fit_biases, reference_quantiles
from .fit import fit
from .kernels import KERNEL_INDICES, MIN_LENGTH, NUM_KERNELS
from .parameters import (
    MiniRocketParameters,
    dilation_tables,
    fit_dilations,
    plan,
    quantile_levels,
    resolve_seed,
)
from .serialization import ModelFileError, fingerprint, from_dict, load, save, to_dict
from .transform import PreparedTransform, transform
from .validation import InputError, as_float32_array, check_against_model

__all__ = [
    "KERNEL_INDICES",
    "MIN_LENGTH",
    "NUM_KERNELS",
    "InputError",
    "MiniRocketParameters",
    "ModelFileError",
    "PreparedTransform",
    "as_float32_array",
    "check_against_model",
    "dilation_tables",
    "fit",
    "fit_biases",
    "fit_dilations",
    "fingerprint",
    "from_dict",
    "load",
    "plan",
    "quantile_levels",
    "reference_quantiles",
    "resolve_seed",
    "save",
    "to_dict",
    "transform",
]
