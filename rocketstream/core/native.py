"""The native CPU kernel (``_native/minirocket.c``), loaded with ctypes.

The C library is built at install time (``setup.py``) as a plain shared library with no Python,
NumPy or torch headers. It computes exactly the float32 operations of the torch path (see
:mod:`.convolution`) fused with the PPV counting, tiled along time so that its memory does not
grow with the series length. Counts are int64, so series longer than 2**24 points are exact.

Threads: ctypes releases the GIL, so a small thread pool runs the kernel on slabs of series in
parallel; a series with fewer slabs than threads is split along time instead (the partial
counts are integers, summed exactly). The thread count never changes the result.

Vector width: the hot loops are built 8 floats wide (AVX2 clone + baseline) and, with GCC on
x86-64, 16 floats wide (AVX-512); both compute the same bits. ``ROCKETSTREAM_NATIVE_WIDTH=8`` or
``16`` picks one (16 falls back to 8 where the CPU lacks AVX-512); unset or ``auto`` takes
:data:`AUTO_WIDTH`.

``ROCKETSTREAM_NATIVE=0`` disables the library (the torch path is used instead).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..config import ENV_NATIVE, env_flag
from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters

ENV_VAR = ENV_NATIVE
#: Environment variable choosing the kernel's vector width: ``8``, ``16`` or ``auto``.
ENV_WIDTH = "ROCKETSTREAM_NATIVE_WIDTH"
#: The width ``auto`` asks for (16: the AVX-512 path wherever the CPU has it).
AUTO_WIDTH = 16
_ABI_VERSION = 3
#: Time positions per tile: (10 * channels + 1) tiles of floats stay in L1/L2.
DEFAULT_TILE = 1024
_P_I32 = ctypes.POINTER(ctypes.c_int32)
_P_I64 = ctypes.POINTER(ctypes.c_int64)
_P_F32 = ctypes.POINTER(ctypes.c_float)


class _CPlan(ctypes.Structure):
    _fields_ = [
        ("n_channels", ctypes.c_int64),
        ("length", ctypes.c_int64),
        ("n_dilations", ctypes.c_int64),
        ("n_features", ctypes.c_int64),
        ("dilations", _P_I32),
        ("nfd", _P_I32),
        ("feat_offsets", _P_I64),
        ("comb_nch", _P_I32),
        ("comb_off", _P_I64),
        ("chan_idx", _P_I32),
        ("biases", _P_F32),
        ("tile", ctypes.c_int64),
        ("all_padded", ctypes.c_int64),
        ("width", ctypes.c_int64),
    ]


_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_lib_lock = threading.Lock()


def library_path() -> str | None:
    """Path of the built shared library next to this module, or ``None`` if it was not built.

    Returns
    -------
    str or None
    """
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        hits = sorted(glob.glob(os.path.join(here, "_minirocket" + suffix)))
        if hits:
            return hits[0]
    hits = sorted(glob.glob(os.path.join(here, "_minirocket*.so")))
    hits += sorted(glob.glob(os.path.join(here, "_minirocket*.pyd")))
    return hits[0] if hits else None


def _load() -> ctypes.CDLL | None:
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        path = library_path()
        if path is None:
            _lib_error = "the native library was not built (no C compiler at install time?)"
            return None
        try:
            lib = ctypes.CDLL(path)
            lib.mr_version.restype = ctypes.c_int
            if lib.mr_version() != _ABI_VERSION:
                raise OSError(f"{path} has ABI version {lib.mr_version()}, expected {_ABI_VERSION}")
            lib.mr_max_width.restype = ctypes.c_int
            lib.mr_counts.argtypes = [ctypes.POINTER(_CPlan), _P_F32, ctypes.c_int64, ctypes.c_int64, _P_I64]
            lib.mr_counts.restype = ctypes.c_int
            lib.mr_features.argtypes = [ctypes.POINTER(_CPlan), _P_I64, _P_F32]
            lib.mr_features.restype = None
            lib.mr_transform.argtypes = [ctypes.POINTER(_CPlan), _P_F32, ctypes.c_int64, _P_F32]
            lib.mr_transform.restype = ctypes.c_int
            lib.mr_fit_outputs.argtypes = [
                ctypes.POINTER(_CPlan), _P_F32, ctypes.c_int64, ctypes.c_int64, _P_I32, _P_F32,
            ]
            lib.mr_fit_outputs.restype = ctypes.c_int
            lib.mr_select.argtypes = [_P_F32, ctypes.c_int64, ctypes.c_int64, _P_I64, ctypes.c_int64, _P_F32]
            lib.mr_select.restype = ctypes.c_int
        except (OSError, AttributeError) as exc:  # a stale or foreign build: fall back to torch
            _lib_error = f"could not load {path}: {exc}"
            return None
        _lib = lib
        return lib


def enabled() -> bool:
    """Whether the native kernel is built, loadable and not disabled by ``ROCKETSTREAM_NATIVE=0``.

    Returns
    -------
    bool
    """
    if not env_flag(ENV_NATIVE):
        return False
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why :func:`enabled` is false (``None`` when it is true).

    Returns
    -------
    str or None
    """
    if enabled():
        return None
    if not env_flag(ENV_NATIVE):
        return f"disabled by {ENV_NATIVE}"
    return _lib_error


def max_width() -> int:
    """The widest vector path (floats per vector) this build and CPU run: 16 with AVX-512, else 8.

    Returns
    -------
    int
        0 when the library is unavailable (1 for a build without vector support).
    """
    lib = _load()
    return int(lib.mr_max_width()) if lib is not None else 0


def requested_width(width: int | str | None = None) -> int:
    """The vector width asked for: ``width``, else ``ROCKETSTREAM_NATIVE_WIDTH``, else :data:`AUTO_WIDTH`.

    Parameters
    ----------
    width : {8, 16, "auto"} or None
        ``None`` reads the environment variable.

    Returns
    -------
    int
        8 or 16 (what the kernel then runs also depends on the CPU, see :func:`max_width`).

    Raises
    ------
    ValueError
        Another value.
    """
    source = "width"
    if width is None:
        width, source = os.environ.get(ENV_WIDTH, "").strip() or "auto", ENV_WIDTH
    text = str(width).strip().lower()
    if text == "auto":
        return AUTO_WIDTH
    if text in ("8", "16"):
        return int(text)
    raise ValueError(f"{source}={width!r}: the native kernel's vector width must be 8, 16 or 'auto'")


def _ptr(a: np.ndarray, ctype):
    return a.ctypes.data_as(ctypes.POINTER(ctype))


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(n_threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = ThreadPoolExecutor(n_threads, thread_name_prefix="rocketstream-native")
            _pools[n_threads] = pool
        return pool


class NativeKernel:
    """The parameters as flat C arrays; build once per fitted model, reuse for every batch.

    Parameters
    ----------
    params : MiniRocketParameters
        The model (a plan's biases are taken as zeros, enough for :meth:`fit_outputs`).
    tile : int, default 1024
        Time positions per tile (rounded up to a multiple of 16); capped for very wide inputs so a
        tile stays near L2 size.
    length : int, optional
        Overrides the series length (default: the fitted one).
    all_padded : bool, default False
        Take every PPV over the whole output, the variable-length rule.
    width : {8, 16, "auto"}, optional
        Vector width of the hot loops (default: ``ROCKETSTREAM_NATIVE_WIDTH``, else ``auto``); 16
        runs only where the CPU has AVX-512. Never changes the result.

    Raises
    ------
    RuntimeError
        The native library is unavailable (see :func:`unavailable_reason`).
    ValueError
        The channel combinations do not match the dilations, a channel index is out of range, or
        the width is not 8, 16 or ``auto``.
    """

    def __init__(self, params: MiniRocketParameters, tile: int = DEFAULT_TILE, *,
                 length: int | None = None, all_padded: bool = False, width: int | str | None = None) -> None:
        lib = _load()
        if lib is None:
            raise RuntimeError(f"native MiniRocket kernel unavailable: {_lib_error}")
        self._lib = lib
        self.params = params
        self.n_channels = int(params.n_channels)
        self.length = int(length or params.length)
        self.n_features = int(params.n_features_out)
        self._dil = np.ascontiguousarray(params.dilations, dtype=np.int32)
        self._nfd = np.ascontiguousarray(params.features_per_dilation, dtype=np.int32)
        self._off = np.ascontiguousarray(params.feature_offsets(), dtype=np.int64)
        nch = np.ascontiguousarray(params.channels_per_combination, dtype=np.int32)
        self._nch = nch
        self._coff = np.ascontiguousarray(np.concatenate([[0], np.cumsum(nch)[:-1]]), dtype=np.int64)
        self._chan = np.ascontiguousarray(params.channel_indices, dtype=np.int32)
        if len(nch) != NUM_KERNELS * len(self._dil):
            raise ValueError("channel combinations do not match the dilations")
        if self._chan.size and (self._chan.min() < 0 or self._chan.max() >= self.n_channels):
            raise ValueError("channel indices out of range")
        biases = params.biases if params.biases is not None else np.zeros(self.n_features, np.float32)
        self._bias = np.ascontiguousarray(biases, dtype=np.float32)
        # very wide inputs: keep the per-tile working set (10 windows per channel) near L2 size
        tile = int(max(64, min(tile, (2**20 // (40 * self.n_channels + 4)) // 16 * 16)))
        tile = -(-tile // 16) * 16  # the C side rounds up to a multiple of 16 (64-byte aligned arrays)
        self.tile = tile
        want = requested_width(width)
        #: The vector width the kernel runs (floats per vector): 16 or 8 (1 without vector support).
        self.width = 16 if want >= 16 and lib.mr_max_width() >= 16 else min(8, int(lib.mr_max_width()))
        self._c = _CPlan(
            self.n_channels, self.length, len(self._dil), self.n_features,
            _ptr(self._dil, ctypes.c_int32), _ptr(self._nfd, ctypes.c_int32),
            _ptr(self._off, ctypes.c_int64), _ptr(self._nch, ctypes.c_int32),
            _ptr(self._coff, ctypes.c_int64), _ptr(self._chan, ctypes.c_int32),
            _ptr(self._bias, ctypes.c_float), tile, int(all_padded), self.width,
        )
        self._cref = ctypes.byref(self._c)

    # -- transform -------------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> None:
        if (x.dtype != np.float32 or x.ndim != 3 or not x.flags.c_contiguous
                or x.shape[1:] != (self.n_channels, self.length)):
            raise ValueError(
                f"native transform needs C-contiguous float32 (n, {self.n_channels}, {self.length}), "
                f"got {x.dtype} {x.shape}"
            )

    def _transform_slab(self, x: np.ndarray, out: np.ndarray) -> None:
        if len(x):
            rc = self._lib.mr_transform(self._cref, _ptr(x, ctypes.c_float), len(x),
                                        _ptr(out, ctypes.c_float))
            if rc:
                raise MemoryError("native MiniRocket kernel could not allocate its workspace")

    def _counts_range(self, x1: np.ndarray, t0: int, t1: int) -> np.ndarray:
        counts = np.zeros(self.n_features, dtype=np.int64)
        rc = self._lib.mr_counts(self._cref, _ptr(x1, ctypes.c_float), t0, t1, _ptr(counts, ctypes.c_int64))
        if rc:
            raise MemoryError("native MiniRocket kernel could not allocate its workspace")
        return counts

    def _time_split(self, x1: np.ndarray, out1: np.ndarray, n_threads: int) -> None:
        """One series, its time axis split over ``n_threads`` (exact: integer counts add up)."""
        n_tiles = -(-self.length // self.tile)
        bounds = [min(self.length, (n_tiles * j // n_threads) * self.tile) for j in range(n_threads + 1)]
        ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        parts = list(_pool(n_threads).map(lambda r: self._counts_range(x1, *r), ranges))
        counts = np.ascontiguousarray(np.sum(parts, axis=0, dtype=np.int64))
        self._lib.mr_features(self._cref, _ptr(counts, ctypes.c_int64), _ptr(out1, ctypes.c_float))

    def transform_into(self, x: np.ndarray, out: np.ndarray, n_threads: int = 1) -> None:
        """Features of ``x`` (n, C, L) into ``out`` (n, F), both C-contiguous float32.

        Parameters
        ----------
        x : numpy.ndarray
            C-contiguous float32 (n, C, L) with the plan's ``C`` and ``L``.
        out : numpy.ndarray
            C-contiguous float32 (n, F), written in place.
        n_threads : int, default 1
            Threads to use; never changes the result.

        Raises
        ------
        ValueError
            ``x`` or ``out`` has another dtype, shape or layout.
        MemoryError
            The kernel could not allocate its workspace.
        """
        self._check_input(x)
        n = len(x)
        if out.dtype != np.float32 or out.shape != (n, self.n_features) or not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous float32 (n, n_features)")
        n_threads = max(1, int(n_threads))
        if n_threads == 1 or n == 0:
            self._transform_slab(x, out)
            return
        # whole series per thread for the bulk, then the leftover series split along time
        bulk = n // n_threads * n_threads
        if bulk:
            n_slabs = min(bulk, 4 * n_threads)
            edges = [bulk * j // n_slabs for j in range(n_slabs + 1)]
            slabs = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
            list(_pool(n_threads).map(lambda ab: self._transform_slab(x[ab[0] : ab[1]], out[ab[0] : ab[1]]),
                                      slabs))
        for s in range(bulk, n):
            self._time_split(x[s], out[s], n_threads)

    # -- bias fit --------------------------------------------------------------------------------

    def fit_outputs(self, rows: np.ndarray, dilation_index: int, kernels: np.ndarray) -> np.ndarray:
        """Full padded outputs (K, L) of kernel ``kernels[r]`` on row ``r``, gamma-first order.

        Parameters
        ----------
        rows : numpy.ndarray
            C-contiguous float32 (K, C, L).
        dilation_index : int
            Position of the dilation in the model.
        kernels : numpy.ndarray
            (K,) kernel indices in [0, 84), one per row.

        Returns
        -------
        numpy.ndarray
            float32 (K, L).

        Raises
        ------
        ValueError
            Bad ``rows``, ``kernels`` or ``dilation_index``.
        MemoryError
            The kernel could not allocate its workspace.
        """
        self._check_input(rows)
        kernels = np.ascontiguousarray(kernels, dtype=np.int32)
        bad = kernels.size and (kernels.min() < 0 or kernels.max() >= NUM_KERNELS)
        if kernels.shape != (len(rows),) or bad:
            raise ValueError("one kernel index in [0, 84) per row is required")
        if not 0 <= dilation_index < len(self._dil):
            raise ValueError(f"dilation index {dilation_index} out of range")
        out = np.empty((len(rows), self.length), dtype=np.float32)
        rc = self._lib.mr_fit_outputs(self._cref, _ptr(rows, ctypes.c_float), len(rows), int(dilation_index),
                                      _ptr(kernels, ctypes.c_int32), _ptr(out, ctypes.c_float))
        if rc:
            raise MemoryError("native MiniRocket kernel could not allocate its workspace")
        return out


def order_statistics(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``np.sort(values, axis=1)[r, ranks[r]]`` for each row, by partial selection.

    ``values`` (R, n) C-contiguous float32 is reordered in place; ``ranks`` (R, Q) are 0-based.

    Parameters
    ----------
    values : numpy.ndarray
        C-contiguous float32 (R, n); reordered in place.
    ranks : numpy.ndarray
        (R, Q) integers in [0, n).

    Returns
    -------
    numpy.ndarray
        float32 (R, Q).

    Raises
    ------
    RuntimeError
        The native library is unavailable.
    ValueError
        Bad ``values`` or ``ranks``.
    MemoryError
        The kernel could not allocate its workspace.
    """
    lib = _load()
    if lib is None:
        raise RuntimeError(f"native MiniRocket kernel unavailable: {_lib_error}")
    if values.dtype != np.float32 or values.ndim != 2 or not values.flags.c_contiguous:
        raise ValueError("values must be C-contiguous float32 (rows, n)")
    ranks = np.ascontiguousarray(ranks, dtype=np.int64)
    n_rows, n = values.shape
    if ranks.ndim != 2 or len(ranks) != n_rows or (ranks.size and (ranks.min() < 0 or ranks.max() >= n)):
        raise ValueError("ranks must be (rows, q) integers in [0, n)")
    out = np.empty(ranks.shape, dtype=np.float32)
    rc = lib.mr_select(_ptr(values, ctypes.c_float), n_rows, n, _ptr(ranks, ctypes.c_int64), ranks.shape[1],
                       _ptr(out, ctypes.c_float))
    if rc:
        raise MemoryError("native MiniRocket kernel could not allocate its workspace")
    return out
