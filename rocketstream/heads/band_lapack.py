"""LAPACK's band reduction ``dsytrd_sy2sb``, which SciPy's wrappers lack, from the LAPACK SciPy loaded.

``dsytrd_sy2sb`` reduces a symmetric matrix to a band of half-width ``kd`` by orthogonal similarity,
``A = Q B Q'``, with matrix-matrix products throughout: about three times faster than the one-stage
tridiagonal reduction ``dsytrd`` at F = 10,000, whose half of matrix-vector products is bound by memory
bandwidth. It is called through ctypes from the shared library behind ``scipy.linalg.lapack`` (the
OpenBLAS bundled in SciPy's wheels, or the LAPACK of a conda environment), with integer arguments that
32- and 64-bit-integer builds both read. Each routine found is checked on a small matrix, once per
process, and the first that passes is used; when none does, :func:`band_reduction` returns None and the
caller uses ``dsytrd`` (a band of half-width 1).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
from collections.abc import Callable

import numpy as np

#: exported names of the routine: SciPy's wheels prefix their OpenBLAS symbols with ``scipy_``; 64-bit
#: integer builds suffix them with ``64_`` (the call suits both, see :func:`_integer`)
_NAMES = ("scipy_dsytrd_sy2sb_", "dsytrd_sy2sb_", "dsytrd_sy2sb",
          "scipy_dsytrd_sy2sb_64_", "dsytrd_sy2sb_64_")
#: file names of libraries that may carry LAPACK
_LIBRARY_HINTS = ("lapack", "openblas", "mkl_rt", "flexiblas")


def _candidate_libraries() -> list[str]:
    """Shared libraries that may hold SciPy's LAPACK: those mapped into this process once
    ``scipy.linalg.lapack`` is loaded (Linux), then the ones bundled beside SciPy, then the system's."""
    import scipy
    import scipy.linalg.lapack  # noqa: F401  (loads the LAPACK library)

    found: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                path = fields[-1] if len(fields) >= 6 else ""
                name = os.path.basename(path).lower()
                if path not in found and any(k in name for k in _LIBRARY_HINTS):
                    found.append(path)
    except OSError:
        pass
    root = os.path.dirname(os.path.dirname(scipy.__file__))
    for pattern in ("scipy.libs/*openblas*", "scipy/.dylibs/*openblas*", "scipy.libs/*lapack*"):
        found += sorted(p for p in glob.glob(os.path.join(root, pattern)) if p not in found)
    for name in ("lapack", "openblas"):
        lib = ctypes.util.find_library(name)
        if lib and lib not in found:
            found.append(lib)
    return found


def _load() -> Callable | None:
    """The first routine found (names in :data:`_NAMES` order, then libraries) that passes :func:`_works`."""
    libs = []
    for path in _candidate_libraries():
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    for name in _NAMES:
        for lib in libs:
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            fn.restype = None
            try:
                if _works(fn):
                    return fn
            except Exception:  # noqa: BLE001  (a broken library: try the next, else use dsytrd)
                continue
    return None


def _integer(value: int) -> ctypes.c_int64:
    """A Fortran integer argument that 32- and 64-bit-integer LAPACKs both read as ``value``: eight bytes,
    whose first four (little-endian) are the 32-bit value."""
    return ctypes.c_int64(value)


def _info(arg: ctypes.c_int64) -> int:
    """INFO as either kind of LAPACK wrote it (a 32-bit one writes only the first four bytes)."""
    if -(1 << 31) <= arg.value < (1 << 31):
        return arg.value
    return ctypes.c_int32(arg.value & 0xFFFFFFFF).value  # a negative 32-bit INFO in a zeroed 64-bit slot


def _call(fn: Callable, a: np.ndarray, kd: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Run the routine on the column-major ``a`` (its lower triangle, in place)."""
    n = a.shape[0]
    ab = np.zeros((kd + 1, n), order="F")
    tau = np.zeros(max(1, n - kd))
    info = _integer(0)
    query = np.zeros(1)

    def run(work: np.ndarray, lwork: int) -> None:
        ptr = ctypes.c_void_p
        info.value = 0
        fn(ctypes.c_char_p(b"L"), ctypes.byref(_integer(n)), ctypes.byref(_integer(kd)),
           ptr(a.ctypes.data), ctypes.byref(_integer(max(1, n))), ptr(ab.ctypes.data),
           ctypes.byref(_integer(kd + 1)), ptr(tau.ctypes.data), ptr(work.ctypes.data),
           ctypes.byref(_integer(lwork)), ctypes.byref(info), ctypes.c_size_t(1))

    run(query, -1)
    if _info(info) != 0:
        return ab, tau, _info(info)
    run(np.zeros(max(1, int(query[0]))), max(1, int(query[0])))
    return ab, tau, _info(info)


def _works(fn: Callable) -> bool:
    """Whether ``fn`` reduces a small symmetric matrix correctly and leaves its upper triangle alone."""
    n, kd = 12, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n))
    sym = x + x.T
    a = np.asfortranarray(sym.copy())
    upper = np.triu(a, 1)
    ab, tau, info = _call(fn, a, kd)
    if info != 0 or not np.array_equal(np.triu(a, 1), upper):
        return False
    b = np.zeros((n, n))
    for d in range(kd + 1):
        idx = np.arange(n - d)
        b[idx + d, idx] = b[idx, idx + d] = ab[d, : n - d]
    q = np.eye(n)
    for i in range(n - kd):  # Q = H(0) H(1) ... applied from the right
        v = np.zeros(n)
        v[i + kd] = 1.0
        v[i + kd + 1 :] = a[i + kd + 1 :, i]
        q -= tau[i] * np.outer(q @ v, v)
    return bool(np.abs(q @ b @ q.T - sym).max() <= 1e-10 * np.abs(sym).max())


@functools.cache
def _routine() -> Callable | None:
    return _load()


def band_reduction(a: np.ndarray, kd: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Reduce the lower triangle of the column-major symmetric ``a`` to a band in place.

    Returns the band (``(kd + 1, F)``, LAPACK's lower band storage: row ``d`` holds the ``d``-th
    subdiagonal) and the ``F - kd`` reflector scalars; the reflectors are left below the ``kd``-th
    subdiagonal of ``a``, its upper triangle untouched. None when the routine is unavailable.
    """
    fn = _routine()
    if fn is None:
        return None
    if not a.flags.f_contiguous or a.dtype != np.float64:
        raise ValueError("the matrix must be a column-major float64 array")
    ab, tau, info = _call(fn, a, kd)
    if info != 0:
        raise RuntimeError(f"LAPACK dsytrd_sy2sb: illegal argument {-info}")
    return ab, tau[: max(0, a.shape[0] - kd)]


__all__ = ["band_reduction"]
