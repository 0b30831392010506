"""Long recordings cut lazily into windows, with per-window labels.

A (channel, time) recording (NumPy, Dask, Zarr or an xarray DataArray, possibly chunked along
time) becomes a Dask array (window, channel, length) whose chunks each read only the stretch of
the recording they cover; the windows are never all materialised at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import INGEST_CHUNK_BYTES
from ..errors import InputError
from .readers import IngestError


def window_starts(
    n_time: int, length: int, stride: int, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Start index of every full window of ``length`` points, ``stride`` apart, inside [start, stop).

    Parameters
    ----------
    n_time : int
        Time points of the recording.
    length, stride : int
        Window length and step (>= 1).
    start : int, default 0
        First time point to use.
    stop : int, optional
        End of the span (default: the recording's end).

    Returns
    -------
    numpy.ndarray
        int64 start indices.

    Raises
    ------
    InputError
        ``length`` or ``stride`` below 1, or a span shorter than one window.

    Examples
    --------
    >>> from rocketstream.ingest.windows import window_starts
    >>> window_starts(10_000, 500, 250)[:4]
    array([  0, 250, 500, 750])
    """
    if length < 1 or stride < 1:
        raise InputError(f"window length and stride must be >= 1, got {length} and {stride}")
    stop = n_time if stop is None else min(stop, n_time)
    if stop - start < length:
        raise InputError(f"the recording span {stop - start} is shorter than one window ({length})")
    return np.arange(start, stop - length + 1, stride, dtype=np.int64)


def _as_dask_recording(recording: Any):
    import dask.array as da

    if hasattr(recording, "dims") and hasattr(recording, "data"):  # xarray DataArray
        dims = tuple(recording.dims)
        if set(dims) == {"channel", "time"}:
            recording = recording.transpose("channel", "time")
        elif len(dims) == 1:
            recording = recording.expand_dims("channel")
        recording = recording.data
    arr = recording if isinstance(recording, da.Array) else da.asarray(recording)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise IngestError(f"a recording must be (channel, time) or (time,), got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise IngestError(f"a recording must hold real numbers, got dtype {arr.dtype}")
    return arr


def _cut(segment: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """Windows of ``segment`` (C, T) starting at ``offsets``: (len(offsets), C, length) float32."""
    view = np.lib.stride_tricks.sliding_window_view(segment, length, axis=1)  # (C, T-len+1, len)
    return np.ascontiguousarray(view[:, offsets, :].transpose(1, 0, 2), dtype=np.float32)


def windows(recording: Any, length: int, stride: int, *, start: int = 0, stop: int | None = None,
            chunk_windows: int | None = None, target_chunk_bytes: int = INGEST_CHUNK_BYTES):
    """Lazy (window, channel, length) float32 Dask array of the recording's windows.

    Each output chunk holds ``chunk_windows`` windows (default: about ``target_chunk_bytes``) and
    depends only on the slice of the recording those windows cover.

    Parameters
    ----------
    recording : array-like
        (channel, time) or (time,) values: NumPy, Dask, Zarr or an xarray DataArray (dims channel, time).
    length, stride : int
        Window length and step.
    start : int, default 0
        First time point to use.
    stop : int, optional
        End of the span (default: the recording's end).
    chunk_windows : int, optional
        Windows per output chunk.
    target_chunk_bytes : int, default INGEST_CHUNK_BYTES
        Bytes per output chunk when ``chunk_windows`` is not given (8 MiB).

    Returns
    -------
    dask.array.Array
        float32 (n_windows, channels, length); window ``j`` starts at ``window_starts(...)[j]``.

    Raises
    ------
    InputError
        A bad ``length``, ``stride`` or span (see :func:`window_starts`).
    IngestError
        The recording is not (channel, time) or (time,) real numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.ingest.windows import windows
    >>> rec = np.random.default_rng(0).standard_normal((3, 10_000)).astype(np.float32)
    >>> windows(rec, length=500, stride=250).shape
    (39, 3, 500)
    """
    import dask.array as da

    rec = _as_dask_recording(recording)
    n_channels, n_time = rec.shape
    starts = window_starts(n_time, length, stride, start, stop)
    per = chunk_windows or max(1, target_chunk_bytes // (4 * n_channels * length))
    blocks = []
    for j0 in range(0, len(starts), per):
        s = starts[j0 : j0 + per]
        a, b = int(s[0]), int(s[-1]) + length
        seg = rec[:, a:b].rechunk({1: -1})
        blocks.append(
            da.map_blocks(_cut, seg, s - a, length, dtype=np.float32, new_axis=0,
                          chunks=((len(s),), (n_channels,), (length,)))
        )
    return da.concatenate(blocks, axis=0)


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    out_s, out_e = [], []
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        if out_e and a <= out_e[-1]:
            out_e[-1] = max(out_e[-1], b)
        else:
            out_s.append(a)
            out_e.append(b)
    return np.array(out_s, np.int64), np.array(out_e, np.int64)


def _coverage(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Total length of the disjoint sorted intervals [starts, ends) that lies below each point."""
    if len(starts) == 0:
        return np.zeros(len(points), dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(ends - starts)])  # full lengths of intervals 0..m-1
    k = np.searchsorted(starts, points, side="right")  # intervals starting at or before the point
    last = np.maximum(k - 1, 0)  # the only interval that may contain the point
    inside = np.minimum(points, ends[last]) - starts[last]
    return np.where(k > 0, before[last] + inside, 0)


def labels_from_intervals(starts: np.ndarray, length: int, intervals: Any, *, min_coverage: float = 0.5,
                          unlabelled: Any = None) -> np.ndarray:
    """Label each window by the interval label covering most of it.

    ``intervals`` is a table of (start, end, label) rows (end exclusive, in samples), given as a
    sequence of tuples, a dict of columns or a pandas DataFrame with columns start/end/label.
    A window whose best label covers less than ``min_coverage`` of it gets ``unlabelled``.
    Ties go to the label that sorts first.

    Parameters
    ----------
    starts : numpy.ndarray
        Window start indices (see :func:`window_starts`).
    length : int
        Window length.
    intervals : sequence, dict or pandas.DataFrame
        The (start, end, label) table; intervals of one label may overlap.
    min_coverage : float, default 0.5
        Smallest share of a window its label must cover.
    unlabelled : Any, default None
        The label of windows below ``min_coverage``.

    Returns
    -------
    numpy.ndarray
        One label per window (object dtype when some window is unlabelled).

    Raises
    ------
    IngestError
        A malformed table: missing columns, rows that are not triples, non-integer bounds, or end <= start.

    Examples
    --------
    >>> from rocketstream.ingest.windows import labels_from_intervals
    >>> labels_from_intervals([0, 250, 500, 750], 500, [(0, 600, "rest"), (600, 2000, "walk")])
    array(['rest', 'rest', 'walk', 'walk'], dtype='<U4')
    """
    i_start, i_end, i_label = _interval_columns(intervals)
    starts = np.asarray(starts, dtype=np.int64)
    ends = starts + length
    classes = sorted(set(i_label.tolist()))
    cover = np.zeros((len(classes), len(starts)), dtype=np.int64)
    for c, lab in enumerate(classes):
        sel = i_label == lab
        s, e = _merge(i_start[sel], i_end[sel])
        cover[c] = _coverage(ends, s, e) - _coverage(starts, s, e)
    best = np.argmax(cover, axis=0)
    enough = cover[best, np.arange(len(starts))] >= min_coverage * length
    if enough.all():
        return np.asarray(classes)[best]
    out = np.empty(len(starts), dtype=object)
    out[:] = [classes[b] if ok else unlabelled for b, ok in zip(best.tolist(), enough.tolist(), strict=True)]
    return out


def _interval_columns(intervals: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if hasattr(intervals, "columns") or isinstance(intervals, dict):
        try:
            cols = [np.asarray(intervals[k]) for k in ("start", "end", "label")]
        except KeyError as exc:
            raise IngestError(f"interval table needs columns start, end, label; missing {exc}") from exc
    else:
        rows = list(intervals)
        if any(len(r) != 3 for r in rows):
            raise IngestError("interval table rows must be (start, end, label)")
        cols = [np.array([r[i] for r in rows]) for i in range(3)]
    s, e, lab = cols
    if s.dtype.kind not in "iu" or e.dtype.kind not in "iu":
        raise IngestError("interval start and end must be integer sample indices")
    if (e <= s).any():
        bad = int(np.nonzero(e <= s)[0][0])
        raise IngestError(f"interval {bad} has end <= start ({int(s[bad])}, {int(e[bad])})")
    return s.astype(np.int64), e.astype(np.int64), lab


def labels_from_annotations(starts: np.ndarray, length: int, annotation: Any, *,
                            min_coverage: float = 0.5, unlabelled: Any = None,
                            block: int = 2**22) -> np.ndarray:
    """Label windows from a per-time-point annotation array (majority label in each window).

    The annotation (NumPy, Zarr or Dask, one label per time point) is read in blocks and
    run-length encoded into an interval table, so it is never loaded whole.

    Parameters
    ----------
    starts : numpy.ndarray
        Window start indices.
    length : int
        Window length.
    annotation : array-like
        One label per time point of the recording.
    min_coverage : float, default 0.5
        Smallest share of a window its label must cover.
    unlabelled : Any, default None
        The label of windows below ``min_coverage``.
    block : int, default 2**22
        Time points read at once.

    Returns
    -------
    numpy.ndarray
        One label per window (see :func:`labels_from_intervals`).

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.ingest.windows import labels_from_annotations
    >>> annotation = np.repeat(["rest", "walk"], 5000)
    >>> labels_from_annotations([0, 4500, 5000], 500, annotation)
    array(['rest', 'rest', 'walk'], dtype='<U4')
    """
    n = len(annotation)
    run_s, run_e, run_l = [], [], []
    for a in range(0, n, block):
        part = np.asarray(annotation[a : a + block])
        change = np.nonzero(part[1:] != part[:-1])[0] + 1
        bounds = np.concatenate([[0], change, [len(part)]])
        for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            lab = part[s].item() if hasattr(part[s], "item") else part[s]
            if run_l and run_e[-1] == a + s and run_l[-1] == lab:
                run_e[-1] = a + e
            else:
                run_s.append(a + s)
                run_e.append(a + e)
                run_l.append(lab)
    table = {"start": np.array(run_s, np.int64), "end": np.array(run_e, np.int64),
             "label": np.array(run_l)}
    return labels_from_intervals(starts, length, table, min_coverage=min_coverage, unlabelled=unlabelled)
