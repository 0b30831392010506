"""Sufficient statistics of the exact ridge head, kept beside the head file so that rows appended to a
features store are folded in without reading the old rows again.

What is kept, all float64 (a :class:`RidgeStats`):

- ``count`` n, the per-feature ``mean`` and the centred co-moment matrix
  ``comoment = sum_i (x_i - mean)(x_i - mean)'`` (F x F; stored as its upper triangle);
- the target columns' means ``y_mean`` and centred cross-moments ``xy = sum_i (x_i - mean)(y_i - y_mean)'``
  (F x T): for classification the columns are class indicators (0/1, one per class in ``classes``), so
  a class first seen in appended rows is a new column that is zero for the old rows; for regression the
  targets themselves;
- ``identity``: which rows of which features they cover (:mod:`rocketstream.heads.folded`).

Two sets of rows merge exactly by Chan, Golub & LeVeque's pairwise rule (``delta`` = difference of the
means): ``C = C_a + C_b + n_a n_b / n * delta delta'``, the same for ``xy``. From the merged statistics
the standardised ``Z'Z = C / (s s')`` and ``Z'y = xy / s`` of all rows follow (``s``: the standard
deviations, ``diag(C) / n``, with scikit-learn's rule for constant features), hence the ridge
coefficients for any alpha, equal to those of a fit on all rows to float64 rounding. One pass over
rows accumulates them into one F x F matrix: the ``(x - k)`` products about a shift ``k`` (the first
rows' mean) are added by a multithreaded BLAS rank-k update (``dsyrk``, upper triangle) while the next
rows are read, then centred.

Leave-one-out residuals, which choose alpha, are not functions of any such statistics: each row's
residual divides by its own leverage ``z_i' (Z'Z + alpha I)^-1 z_i``, which depends on the new mean,
scale and ``Z'Z``. Re-selecting alpha therefore costs what it costs in a full fit, the F x F
band reduction and one pass over every row (:mod:`~rocketstream.heads.ridge_solve`); the update
saves the statistics pass over the old rows. Keeping alpha costs a pass over the new rows and one F x F
Cholesky solve. Gram-form heads (n <= F) keep no co-moments: their rows take no more room than an F x F
matrix would, so an update refits on all rows.

The file, ``H.stats.npz`` beside head file ``H.npz``: plain arrays and a JSON ``__meta__`` (format,
version, the identity, the sha256 of the head file they belong to, and a sha256 over meta and arrays),
written atomically, never pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import blas

from rocketstream.errors import InputError, ModelFileError
from rocketstream.storage.locations import resolve
from rocketstream.storage.outputs import write_file

from .loader import BlockRef, FeatureSource, default_workers
from .moments import Moments, check_finite_summary
from .ridge_solve import blas_threads, mirror_upper
from .serialize import head_checksum
from .targets import as_targets, encode_classes

FORMAT = "rocketstream-ridge-stats"
VERSION = 1
#: rows of the F x F matrices updated at a time by a rank-one correction (bounds the temporary)
_ROW_BLOCK = 512
#: rows added to the co-moments by one rank-k update (float64: 8 F bytes each)
ACCUMULATE_ROWS = 1024


@dataclass
class RidgeStats:
    """Merged sufficient statistics of rows ``[0, count)`` (see the module docstring).

    ``mean``, ``comoment``, ``y_mean`` and ``xy`` are None for a Gram-form head, whose statistics are
    its rows. ``classes`` labels the indicator columns (classification), None for regression.
    """

    count: int
    mean: np.ndarray | None = None
    comoment: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    xy: np.ndarray | None = None
    classes: np.ndarray | None = None
    identity: dict = field(default_factory=dict)

    @property
    def has_moments(self) -> bool:
        """Whether the co-moments are kept (covariance-form heads)."""
        return self.comoment is not None

    def scale(self) -> np.ndarray:
        """Per-feature standard deviations, 1 for (near-)constant features (scikit-learn's rule)."""
        return Moments(self.count, self.mean, np.diagonal(self.comoment) / self.count).scale()

    def with_classes(self, classes: np.ndarray) -> RidgeStats:
        """The same statistics with indicator columns for ``classes`` (a sorted superset of ours)."""
        if self.classes is None or np.array_equal(self.classes, classes):
            return self
        pos = np.searchsorted(classes, self.classes)
        y_mean = np.zeros(classes.size)
        y_mean[pos] = self.y_mean
        xy = np.zeros((self.xy.shape[0], classes.size))
        xy[:, pos] = self.xy
        return replace(self, y_mean=y_mean, xy=xy, classes=classes)


def merge(a: RidgeStats, b: RidgeStats, into: RidgeStats | None = None) -> RidgeStats:
    """Chan's pairwise merge of the statistics of two disjoint sets of rows.

    Parameters
    ----------
    a, b : RidgeStats
        With co-moments; for classification their class columns are aligned to the union first.
    into : RidgeStats, optional
        ``a`` or ``b``, whose co-moment matrix may be overwritten (saves an F x F copy); by default
        neither is changed.

    Returns
    -------
    RidgeStats
        The statistics of both sets (no identity).
    """
    if a.classes is not None:
        union = np.union1d(a.classes, b.classes)
        a, b = a.with_classes(union), b.with_classes(union)
    n = a.count + b.count
    w = a.count * b.count / n
    delta = b.mean - a.mean
    delta_y = b.y_mean - a.y_mean
    if into is a:
        comoment = a.comoment
        comoment += b.comoment
    elif into is b:
        comoment = b.comoment
        comoment += a.comoment
    else:
        comoment = a.comoment + b.comoment
    root = np.sqrt(w) * delta
    _add_outer(comoment, root, root)  # exactly symmetric
    xy = a.xy + b.xy + np.outer(w * delta, delta_y)
    return RidgeStats(count=n, mean=a.mean + delta * (b.count / n), comoment=comoment,
                      y_mean=a.y_mean + delta_y * (b.count / n), xy=xy, classes=a.classes)


def _add_outer(out: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """``out += outer(u, v)`` in row blocks (no F x F temporary)."""
    for i in range(0, out.shape[0], _ROW_BLOCK):
        out[i : i + _ROW_BLOCK] += np.outer(u[i : i + _ROW_BLOCK], v)


# ---------------------------------------------------------------------------------------- targets
def target_columns(labels: np.ndarray, task: str, classes: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """The target columns the statistics accumulate: class indicators, or the regression targets.

    Parameters
    ----------
    labels : numpy.ndarray
        One label (or target row) per sample.
    task : {"classification", "regression"}
    classes : numpy.ndarray, optional
        The sorted classes, a superset of those in ``labels`` (default: those of ``labels``, at least two).

    Returns
    -------
    y : numpy.ndarray
        float64 (n, T).
    classes : numpy.ndarray or None
    """
    if task == "regression":
        y = as_targets(labels)
        return (y[:, None] if y.ndim == 1 else y), None
    if classes is None:
        classes, codes = encode_classes(labels)
    else:  # every label is one of ``classes``
        codes = np.searchsorted(classes, labels)
    y = np.zeros((labels.shape[0], classes.size))
    y[np.arange(labels.shape[0]), codes] = 1.0
    return y, classes


# ------------------------------------------------------------------------------------- accumulation
class _Shifted:
    """Running sums about a shift ``k`` (the mean of the first rows): ``n``, ``sum(x - k)``,
    ``sum (x - k)(x - k)'`` (one F x F matrix, its upper triangle filled by BLAS ``dsyrk``), the same for
    the targets, and the count of non-finite values seen."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        f, t = x.shape[1], y.shape[1]
        self.n, self.n_bad, self.first_bad = 0, 0, -1
        self.shift = x.mean(axis=0) if x.shape[0] else np.zeros(f)
        self.y_shift = y.mean(axis=0) if y.shape[0] else np.zeros(t)
        self.s, self.sy = np.zeros(f), np.zeros(t)
        self.ss, self.sxy = np.zeros((f, f)), np.zeros((f, t))

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        xs = np.subtract(x, self.shift, dtype=np.float64)
        ys = y - self.y_shift
        # the column-major view's lower triangle is the row-major upper one: a rank-k update in place
        out = blas.dsyrk(1.0, xs.T, beta=1.0, c=self.ss.T, trans=0, lower=1, overwrite_c=1)
        if not np.shares_memory(out, self.ss):
            self.ss[...] = out.T
        self.sxy += xs.T @ ys
        self.s += xs.sum(axis=0)
        self.sy += ys.sum(axis=0)
        self.n += xs.shape[0]

    def centred(self) -> RidgeStats:
        """The statistics about their own mean (overwrites the sums)."""
        mean_s, mean_y = self.s / self.n, self.sy / self.n
        _add_outer(self.ss, -mean_s, self.s)
        mirror_upper(self.ss, from_lower=False)
        xy = self.sxy - np.outer(mean_s, self.sy)
        ss, self.ss = self.ss, None
        return RidgeStats(count=self.n, mean=self.shift + mean_s, comoment=ss, y_mean=self.y_shift + mean_y,
                          xy=xy)


def _pieces(source: FeatureSource, start: int, stop: int, rows: int) -> list[tuple[int, int]]:
    """Row ranges covering ``[start, stop)``: whole storage chunks, grouped to about ``rows`` rows."""
    cb = source.chunk_bounds
    edges = [start, *(int(b) for b in cb[(cb > start) & (cb < stop)]), stop]
    out, lo = [], start
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b - a > rows:  # a long chunk (NumPy sources): cut it
            if a > lo:
                out.append((lo, a))
            out.extend((s, min(b, s + rows)) for s in range(a, b, rows))
            lo = b
        elif b - lo >= rows:
            out.append((lo, b))
            lo = b
    if lo < stop:
        out.append((lo, stop))
    return out


def _read_raw(source: FeatureSource, a: int, b: int) -> np.ndarray:
    part = source.data[a:b]
    return np.asarray(part.compute(scheduler="sync") if source.kind == "dask" else part)


def window_items(source: FeatureSource, start: int, stop: int) -> tuple[list[Any], list[tuple[int, int]]]:
    """Block items (as :meth:`FeatureSource.block_items`) and their row ranges for rows ``[start, stop)``."""
    items, bounds = [], []
    arr = source.to_dask() if source.kind == "dask" else None
    for b in range(source.n_blocks):
        a, e = source.block(b)
        lo, hi = max(a, start), min(e, stop)
        if lo >= hi:
            continue
        if source.kind == "zarr":
            items.append(BlockRef(source.data, lo, hi))
        elif arr is not None:
            items.append(arr[lo:hi].to_delayed().ravel()[0])
        else:
            items.append(source.data[lo:hi])
        bounds.append((lo, hi))
    return items, bounds


def accumulate(source: FeatureSource, y: np.ndarray, start: int, stop: int, n_chains: int | None = None,
               what: str = "features") -> RidgeStats:
    """The statistics of rows ``[start, stop)``, in one streamed pass.

    Rows are read in this process (not by Dask tasks), in pieces of about :data:`ACCUMULATE_ROWS` (the
    next piece in a background thread while one is added), into one F x F accumulator by a multithreaded
    BLAS rank-k update: one F x F matrix whatever the number of threads.

    Parameters
    ----------
    source : FeatureSource
        The features.
    y : numpy.ndarray
        float64 (stop - start, T): the target columns of those rows (:func:`target_columns`).
    start, stop : int
        The rows.
    n_chains : int, optional
        BLAS threads (default: those of the active Dask client, else the CPU count).
    what : str
        Names the features in errors.

    Returns
    -------
    RidgeStats
        Without identity; ``classes`` is left for the caller to set.

    Raises
    ------
    InputError
        A NaN or Inf in the rows.
    """
    acc: _Shifted | None = None
    n_bad, first_bad = 0, -1
    pieces = _pieces(source, start, stop, ACCUMULATE_ROWS)
    with ThreadPoolExecutor(max_workers=1) as pool, blas_threads(n_chains or default_workers()):
        future = pool.submit(_read_raw, source, *pieces[0]) if pieces else None
        for i, (a, b) in enumerate(pieces):
            x = future.result()
            if i + 1 < len(pieces):
                future = pool.submit(_read_raw, source, *pieces[i + 1])
            yb = y[a - start : b - start]
            bad = ~np.isfinite(x)
            if bad.any():
                n_bad += int(np.count_nonzero(bad))
                first_bad = a + int(np.argmax(bad.any(axis=1))) if first_bad < 0 else first_bad
                continue
            if n_bad:  # once a bad value is seen, only count (the pass fails)
                continue
            if acc is None:
                acc = _Shifted(np.asarray(x, dtype=np.float64), yb)
            acc.add(x, yb)
            del x
    check_finite_summary(n_bad, first_bad, what)
    if acc is None or acc.n == 0:
        raise InputError(f"no rows in {what} [{start}, {stop})")
    return acc.centred()


# ---------------------------------------------------------------------------------------------- file
def stats_path(head: str | os.PathLike) -> Path:
    """``H.stats.npz`` beside the head file ``H.npz`` (``H`` without the suffix is accepted)."""
    p = resolve(head).path
    stem = p.name[: -len(".npz")] if p.name.endswith(".npz") else p.name
    return p.with_name(stem + ".stats.npz")


def _pack(c: np.ndarray) -> np.ndarray:
    """The upper triangle of a symmetric matrix, row by row."""
    f = c.shape[0]
    out = np.empty(f * (f + 1) // 2)
    pos = 0
    for i in range(f):
        out[pos : pos + f - i] = c[i, i:]
        pos += f - i
    return out


def _unpack(packed: np.ndarray, f: int) -> np.ndarray:
    if packed.shape != (f * (f + 1) // 2,):
        raise ValueError(f"a packed {f} x {f} matrix has {f * (f + 1) // 2} entries, got {packed.shape}")
    c = np.empty((f, f))
    pos = 0
    for i in range(f):
        row = packed[pos : pos + f - i]
        c[i, i:] = row
        c[i:, i] = row
        pos += f - i
    return c


def head_digest(head_file: str | os.PathLike) -> str:
    """sha256 of a head file's bytes: what pairs the statistics with their head."""
    h = hashlib.sha256()
    with open(head_file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_stats(path: str | os.PathLike, stats: RidgeStats, head_file: str | os.PathLike,
                overwrite: bool = False) -> Path:
    """Write ``stats`` for the head in ``head_file`` (already written) to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The statistics file (see :func:`stats_path`).
    stats : RidgeStats
    head_file : str or os.PathLike
        The head they belong to; its sha256 is recorded.
    overwrite : bool, default False
        Replace an existing statistics (or head) file, never anything else.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    arrays: dict[str, np.ndarray] = {}
    if stats.has_moments:
        arrays.update(mean=stats.mean, comoment_upper=_pack(stats.comoment), y_mean=stats.y_mean, xy=stats.xy)
    if stats.classes is not None:
        arrays["classes"] = np.asarray(stats.classes)
        if arrays["classes"].dtype == object:
            raise TypeError("class labels of dtype object cannot be stored; use numbers or text")
    meta = json.loads(json.dumps({"format": FORMAT, "version": VERSION, "count": int(stats.count),
                                  "n_features": None if stats.mean is None else int(stats.mean.size),
                                  "has_moments": stats.has_moments, "identity": stats.identity,
                                  "head_sha256": head_digest(head_file)}))
    meta["sha256"] = head_checksum(meta, arrays)
    return write_file(resolve(path), lambda fh: np.savez(fh, __meta__=np.asarray(json.dumps(meta)), **arrays),
                      "head", overwrite)


def read_stats(path: str | os.PathLike, head_file: str | os.PathLike) -> RidgeStats:
    """Read the statistics written by :func:`write_stats` for the head in ``head_file``.

    Parameters
    ----------
    path : str or os.PathLike
        The statistics file.
    head_file : str or os.PathLike
        The head file they must belong to.

    Returns
    -------
    RidgeStats

    Raises
    ------
    FileNotFoundError
        No statistics file.
    ModelFileError
        Damaged, edited (sha256), of an unknown format, or written for another head file.
    """
    path = Path(path)
    fix = "retrain the head with --overwrite / overwrite=True (without --update)"
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except FileNotFoundError:
        raise FileNotFoundError(f"no ridge statistics at {path} (`rocketstream train` writes them beside "
                                f"the head unless --no-stats / keep_stats=False); {fix}") from None
    except Exception as exc:  # noqa: BLE001 - zip, npy header, JSON or decompression damage
        raise ModelFileError(f"cannot read ridge statistics {path} ({type(exc).__name__}: {exc}); "
                             + fix) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a rocketstream ridge statistics file; {fix}")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ModelFileError(f"{path} has statistics format version {meta.get('version')!r}; "
                             "upgrade rocketstream")
    if meta.get("sha256") != head_checksum(meta, arrays):
        raise ModelFileError(f"ridge statistics {path} fail their sha256 check (edited or corrupted); {fix}")
    if meta["head_sha256"] != head_digest(head_file):
        raise ModelFileError(f"the ridge statistics {path} belong to another head than {head_file} (the head "
                             f"was replaced after them, or a write was interrupted); {fix}")
    stats = RidgeStats(count=int(meta["count"]), classes=arrays.get("classes"), identity=meta["identity"])
    if meta["has_moments"]:
        stats.mean, stats.y_mean, stats.xy = arrays["mean"], arrays["y_mean"], arrays["xy"]
        stats.comoment = _unpack(arrays["comoment_upper"], int(meta["n_features"]))
    return stats


__all__ = ["RidgeStats", "accumulate", "merge", "read_stats", "stats_path", "target_columns", "write_stats"]
