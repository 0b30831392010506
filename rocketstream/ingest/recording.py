"""Growing recordings: the complete windows of a (channel, time) Zarr recording that a writer extends
along time, and their features (or predictions) appended as they land.

:func:`recording_windows` gives the windows of the landed part of a recording as a (sample, channel,
time) DataArray with per-window coordinates ``sample`` (the window index), ``start`` (its first time
point) and, with an interval table, ``label``; :func:`append_recording` grows a features (or, with a
head, predictions) store with them through ``run_transform(..., append=True)`` (``predict``), and
:func:`follow_recording` does so at every poll until ``until`` windows are stored or SIGINT/SIGTERM.

The complete-window rule
------------------------
Window ``j`` starts at ``start + j * stride`` and is taken once all of these hold:

1. its points lie in the *landed* part of the recording, ``[0, T)``: every point before ``T`` is in a
   stored time chunk (the recording is read through
   :class:`~rocketstream.storage.zarrstore.CheckedArray`: an absent chunk is one not written yet and
   bounds ``T``; it is never read as the fill value), that chunk decodes (one caught mid-write bounds
   ``T``), and it is not in the run of points equal to the array's fill value on every channel that
   ends a chunk's part inside the array's shape: a chunk written while partly filled reads its points
   beyond the write as the fill value once a resize has extended the array, until the writer rewrites
   it. A point that is not the fill value proves every point before it in its chunk written.
   Give the recording a NaN fill value (NaN is never data: the transform refuses it) and the rule is
   exact; with another fill value, points that really equal it on every channel at the end of the
   written part wait until a point that does not follows them in their chunk;
2. with an interval table, the window ends at or before the table's last interval end, so that no
   interval appended later can change its label (the writer appends intervals in time order: a new
   interval never starts before the last end). A label that changed anyway is refused by the append's
   check of the old rows' coordinates (:class:`~rocketstream.errors.IdentityMismatchError`).
   An interval table stored beside the recording (arrays ``<prefix>start``, ``<prefix>end``,
   ``<prefix>label`` of its group) counts its rows up to the first that is not stored, does not decode,
   or is not yet a valid interval (``end > start`` and a label other than the label array's fill value:
   a row still holding the fill values). Zarr does not store a chunk that equals the fill value, so give
   ``<prefix>start`` a fill value no interval starts at (e.g. -1): a table whose first chunk of starts
   is all zeros would otherwise never land.

Windows are never dropped or moved once taken, so each append only adds rows and the features of all
appends equal a one-shot transform of the final recording's windows bit for bit. A follower killed at
any point (SIGKILL) leaves a store the next :func:`append_recording` or :func:`follow_recording`
finishes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from ..errors import InputError
from ..storage.locations import resolve
from ..storage.zarrstore import CheckedArray, missing_chunks, plain_strings
from .readers import IngestError
from .windows import labels_from_intervals, window_starts, windows

#: windows per task and per store chunk, by default
DEFAULT_CHUNK_WINDOWS = 256


# ------------------------------------------------------------------------------------------ reading
def open_recording(recording: Any, variable: str | None = None) -> CheckedArray:
    """Open a (channel, time) Zarr recording for checked reads (consolidated metadata is ignored).

    Parameters
    ----------
    recording : str, os.PathLike, zarr.Array or zarr.Group
        A Zarr array or group (path or fsspec URL).
    variable : str, optional
        The array inside a group (default: its only 2-D array).

    Returns
    -------
    CheckedArray

    Raises
    ------
    FileNotFoundError
        Nothing at a local path.
    IngestError
        Not a 2-D real-valued array, or a group without a single 2-D array and no ``variable``.
    """
    node, where = recording, None
    if isinstance(recording, (str, os.PathLike)):
        loc = resolve(recording)
        where = loc.display
        if not loc.url and not os.path.exists(loc.target):
            raise FileNotFoundError(f"recording not found: {where}")
        node = zarr.open(loc.target, mode="r", use_consolidated=False)
    if isinstance(node, zarr.Group):
        if variable is None:
            found = [k for k, a in node.arrays() if a.ndim == 2]
            if len(found) != 1:
                raise IngestError(f"the recording group {where or node.store_path} holds {len(found)} 2-D "
                                  "arrays; name the (channel, time) one with variable=")
            variable = found[0]
        if variable not in node or not isinstance(node[variable], zarr.Array):
            raise IngestError(f"no array {variable!r} in the recording group {where or node.store_path}")
        node = node[variable]
        where = f"{where}/{variable}" if where else None
    if not isinstance(node, zarr.Array) or node.ndim != 2 or node.dtype.kind not in "iuf":
        raise IngestError(f"a recording must be a 2-D (channel, time) Zarr array of real numbers, got "
                          f"{getattr(node, 'shape', type(node).__name__)}")
    return CheckedArray(node, where or f"zarr:{node.store_path}")


def _is_fill(block: np.ndarray, fill: Any) -> np.ndarray:
    """Per time point (axis 1): whether every channel holds ``fill`` (NaN equal to NaN)."""
    if fill is None:
        return np.zeros(block.shape[1], dtype=bool)
    if isinstance(fill, (float, np.floating)) and np.isnan(fill):
        return np.isnan(block).all(axis=0)
    return (block == fill).all(axis=0)


def landed_time(checked: CheckedArray, since: int = 0) -> int:
    """Time points of the recording that have landed (rule 1 of the module docstring).

    Parameters
    ----------
    checked : CheckedArray
        The recording, opened now (its shape is the one judged).
    since : int, default 0
        Points known landed already (an earlier answer): the chunks before the one holding point
        ``since`` are not read again.

    Returns
    -------
    int
        ``T``: every point before it has landed.
    """
    n, size = checked.shape[1], checked.stored[1]
    if checked.stored[0] != checked.shape[0]:
        raise InputError(f"{checked.where} is stored in chunks of {tuple(checked.stored)}, which split its "
                         f"{checked.shape[0]} channels; a growing recording needs every channel in each "
                         "stored chunk (chunks=(channels, points)), so that a landed chunk is judged whole")
    if n == 0:
        return 0
    absent = {c[1] for c in missing_chunks(checked)}
    fill = checked.array.fill_value
    for k in range(min(since, n) // size, -(-n // size)):
        a, b = k * size, min((k + 1) * size, n)
        if k in absent:
            return a
        try:
            block = checked[:, a:b]
        except Exception:  # absent since the listing, or caught mid-write: not landed yet
            return a
        stale = _is_fill(block, fill)
        if stale[-1]:
            return a + int(np.flatnonzero(~stale)[-1]) + 1 if (~stale).any() else a
    return n


def stored_intervals(checked: CheckedArray, prefix: str = "interval_") -> dict[str, np.ndarray]:
    """The landed rows of an interval table stored beside a recording (rule 2 of the module docstring).

    Parameters
    ----------
    checked : CheckedArray
        The recording (its group holds ``<prefix>start``, ``<prefix>end``, ``<prefix>label``).
    prefix : str, default "interval_"
        The arrays' common prefix.

    Returns
    -------
    dict of str to numpy.ndarray
        Columns ``start``, ``end`` (int64) and ``label``.

    Raises
    ------
    IngestError
        The recording has no group, or the group lacks one of the three arrays.
    """
    path = checked.array.path.rpartition("/")[0]
    try:
        group = zarr.open_group(store=checked.array.store, path=path, mode="r", use_consolidated=False)
        arrays = [group[f"{prefix}{c}"] for c in ("start", "end", "label")]
    except (KeyError, FileNotFoundError, ValueError, TypeError) as exc:
        raise IngestError(f"the recording {checked.where} has no interval arrays {prefix}start, "
                          f"{prefix}end, {prefix}label beside it ({type(exc).__name__}: {exc})") from exc
    from ..api.follow import read_landed  # the follower's chunk-by-chunk reader of a growing column

    n = min(int(a.shape[0]) for a in arrays)
    (s, ls), (e, le), (lab, ll) = (read_landed(a, 0, n, str(a.path)) for a in arrays)
    landed = ls & le & ll  # the table's rows up to the first one not landed in every column
    n = n if landed.all() else int(np.argmin(landed))
    s, e, lab = s[:n].astype(np.int64), e[:n].astype(np.int64), lab[:n]
    label_fill = arrays[2].fill_value
    blank = plain_strings(np.asarray([("" if label_fill is None else label_fill)]))[0]
    valid = (e > s) & (lab.astype(str) != str(blank))
    n = int(np.argmin(valid)) if not valid.all() else n
    return {"start": s[:n], "end": e[:n], "label": lab[:n]}


# ------------------------------------------------------------------------------------------ windows
def _window_table(checked: CheckedArray, length: int, stride: int, start: int, intervals: Any, since: int,
                  min_coverage: float, unlabelled: Any) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(window starts, labels or None, landed time points) of the landed complete windows."""
    if length < 1 or stride < 1 or start < 0:
        raise InputError(f"window length and stride must be >= 1 and start >= 0, got {length}, {stride}, "
                         f"{start}")
    t = landed_time(checked, since)
    table = None
    if intervals is not None:
        table = stored_intervals(checked, intervals) if isinstance(intervals, str) else intervals
        from .windows import _interval_columns

        s, e, lab = _interval_columns(table)
        table = {"start": s, "end": e, "label": lab}
        t_use = min(t, int(e.max()) if len(e) else 0)
    else:
        t_use = t
    starts = window_starts(t_use, length, stride, start) if t_use - start >= length else np.zeros(0, np.int64)
    labels = None
    if table is not None and not len(starts):
        labels = np.zeros(0, dtype=str)
    elif table is not None:
        labels = labels_from_intervals(starts, length, table, min_coverage=min_coverage,
                                       unlabelled=unlabelled)
        if labels.dtype.kind not in "iufbU":
            labels = np.asarray([str(v) for v in labels.tolist()], dtype=str)
    return starts, labels, t


def recording_windows(recording: Any, length: int, stride: int, *, variable: str | None = None,
                      intervals: Any = None, start: int = 0, chunk_windows: int = DEFAULT_CHUNK_WINDOWS,
                      min_coverage: float = 0.5, unlabelled: Any = "", since: int = 0) -> Any:
    """The complete windows of the landed part of a recording, as a lazy (sample, channel, time)
    DataArray (the rule is in the module docstring).

    Parameters
    ----------
    recording : str, os.PathLike, zarr.Array or zarr.Group
        A (channel, time) Zarr recording (see :func:`open_recording`).
    length, stride : int
        Window length and step, in time points.
    variable : str, optional
        The recording's array inside a group.
    intervals : str, sequence, dict or pandas.DataFrame, optional
        The (start, end, label) interval table, or the prefix (e.g. ``"interval_"``) of its three arrays
        stored in the recording's group; without one the windows carry no ``label``.
    start : int, default 0
        First time point of window 0.
    chunk_windows : int, default 256
        Windows per Dask chunk.
    min_coverage, unlabelled
        As for :func:`~rocketstream.ingest.windows.labels_from_intervals` (``unlabelled`` default ``""``,
        so that the labels stay strings).
    since : int, default 0
        Time points known landed already (see :func:`landed_time`).

    Returns
    -------
    xarray.DataArray
        float32 (sample, channel, time), coordinates ``sample`` (window index), ``start`` and, with
        intervals, ``label``; its name (the input identity a store records) names the recording, the
        window length, stride and start. ``attrs["landed_time"]`` holds the landed time points.

    Raises
    ------
    InputError
        A bad ``length``, ``stride`` or ``start``.
    IngestError
        Not a (channel, time) recording, or a malformed interval table.

    Examples
    --------
    >>> from rocketstream.ingest.recording import recording_windows
    >>> w = recording_windows("recording.zarr", 400, 200, variable="signal", intervals="interval_")
    >>> w.dims, list(w.coords)
    (('sample', 'channel', 'time'), ['sample', 'start', 'label'])
    """
    import dask.array as da
    import xarray as xr

    from ..graph.source import from_checked

    checked = open_recording(recording, variable)
    starts, labels, t = _window_table(checked, length, stride, start, intervals, since, min_coverage,
                                      unlabelled)
    n_ch = checked.shape[0]
    if len(starts):
        rec = from_checked(checked)[:, : int(starts[-1]) + length]
        data = windows(rec, length, stride, start=start, chunk_windows=chunk_windows)
    else:
        data = da.zeros((0, n_ch, length), dtype=np.float32)
    coords: dict[str, Any] = {"sample": np.arange(len(starts), dtype=np.int64), "start": ("sample", starts)}
    if labels is not None:
        coords["label"] = ("sample", labels)
    name = f"windows({checked.where}, length={length}, stride={stride}, start={start})"
    return xr.DataArray(data, dims=("sample", "channel", "time"), coords=coords, name=name,
                        attrs={"landed_time": t})


# ------------------------------------------------------------------------------------------ appending
def append_recording(recording: Any, params: Any, output: str | os.PathLike, length: int, stride: int, *,
                     head: Any = None, variable: str | None = None, intervals: Any = None, start: int = 0,
                     chunk_size: int = DEFAULT_CHUNK_WINDOWS, min_coverage: float = 0.5,
                     unlabelled: Any = "", device: Any = None, scheduler: Any = None, verify: bool = True,
                     since: int = 0) -> tuple[int, int]:
    """Grow the features store ``output`` (with ``head``: the predictions store) with the recording's
    new complete windows: ``run_transform(..., append=True)`` (``predict(..., append=True)``) over
    :func:`recording_windows`. A store not there yet is made; one left by a killed run is finished.

    Parameters
    ----------
    recording, length, stride, variable, intervals, start, min_coverage, unlabelled, since
        As for :func:`recording_windows`.
    params : MiniRocketParameters, str or os.PathLike
        A fitted model for windows of ``length`` points (or its JSON file).
    output : str or os.PathLike
        The store.
    head : Head, str or os.PathLike, optional
        Score the windows with this head into a predictions store instead.
    chunk_size : int, default 256
        Windows per task and per store chunk (the store keeps the one it was made with).
    device, scheduler
        As for :func:`~rocketstream.api.transform.run_transform`.
    verify : bool, default True
        Check every done chunk's input rows before growing (the partly filled chunk and the old rows'
        coordinates are always checked).

    Returns
    -------
    windows : int
        Windows the store holds (0, and nothing written, while no store exists and fewer than
        ``chunk_size`` windows are complete: a store keeps the chunk size it is made with).
    landed : int
        Landed time points of the recording (pass as ``since`` to the next call).

    Raises
    ------
    IdentityMismatchError
        Old windows changed (their values, ``start`` or ``label``), or the store holds another input.
    InputError, IngestError, FileExistsError, UnsafeOutputError, PreflightError, StoreLockedError
        As for :func:`recording_windows` and :func:`~rocketstream.api.transform.run_transform`.
    """
    from ..api.predict import predict
    from ..api.transform import run_transform
    from ..storage.outputs import existing_output

    x = recording_windows(recording, length, stride, variable=variable, intervals=intervals, start=start,
                          chunk_windows=chunk_size, min_coverage=min_coverage, unlabelled=unlabelled,
                          since=since)
    n, t = int(x.sizes["sample"]), int(x.attrs["landed_time"])
    if n == 0 or (n < chunk_size and not existing_output(resolve(output), "features" if head is None
                                                          else "predictions")):
        return 0, t  # a new store is made with a full first chunk: it keeps that chunk size
    if head is None:
        run_transform(x, params, output, chunk_size=chunk_size, append=True, device=device,
                      scheduler=scheduler, verify=verify)
    else:
        predict(x, params, head, output, chunk_size=chunk_size, append=True, device=device,
                scheduler=scheduler, verify=verify)
    return n, t


@dataclass
class RecordingFollowReport:
    """What :func:`follow_recording` did.

    Attributes
    ----------
    reason : str
        ``"until"``, or the signal's name (``"stop"`` when the event was set otherwise).
    windows : int
        Windows the store holds.
    polls : int
        Polls made.
    seconds : float
        Wall time of the run.
    compute_seconds : float
        Time spent in the appends that added windows.
    written : list of tuple of (float, int)
        Per append that added windows: the wall-clock time (``time.time()``) it finished and the
        windows the store then held.
    """

    reason: str = ""
    windows: int = 0
    polls: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    written: list[tuple[float, int]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Windows added per second of appending (the first store's windows included)."""
        return self.windows / self.compute_seconds if self.compute_seconds > 0 else 0.0


def follow_recording(recording: Any, params: Any, output: str | os.PathLike, length: int, stride: int, *,
                     until: int | None = None, poll: float = 1.0, stop: threading.Event | None = None,
                     handle_signals: bool = True,
                     on_poll: Callable[[RecordingFollowReport], None] | None = None,
                     **options: Any) -> RecordingFollowReport:
    """Keep ``output`` up to date with a growing recording: :func:`append_recording` every ``poll``
    seconds, until the store holds ``until`` windows or ``stop`` is set (with ``handle_signals``, by
    SIGINT / SIGTERM in the main thread: the current append is finished first).

    Parameters
    ----------
    recording, params, output, length, stride
        As for :func:`append_recording`.
    until : int, optional
        Stop once the store holds this many windows.
    poll : float, default 1.0
        Seconds between polls.
    stop : threading.Event, optional
        Set it to stop after the current append.
    handle_signals : bool, default True
        SIGINT / SIGTERM set ``stop`` (a second one raises KeyboardInterrupt).
    on_poll : callable, optional
        Called with the report after every poll.
    **options
        ``head``, ``variable``, ``intervals``, ``start``, ``chunk_size``, ``min_coverage``, ``unlabelled``,
        ``device``, ``scheduler`` of :func:`append_recording` (done chunks are verified at the first poll).

    Returns
    -------
    RecordingFollowReport

    Raises
    ------
    InputError
        A bad ``poll`` or ``until``; and as for :func:`append_recording`.
    """
    from ..api.follow import stop_on_signals
    from ..storage.outputs import existing_output

    if poll <= 0:
        raise InputError(f"poll must be a positive number of seconds, got {poll}")
    if until is not None and (isinstance(until, bool) or int(until) < 1):
        raise InputError(f"until must be a positive number of windows, got {until}")
    stop = stop if stop is not None else threading.Event()
    kind = "predictions" if options.get("head") is not None else "features"
    if until is not None and not existing_output(resolve(output), kind):
        # a new store may be made before a whole chunk of windows is complete; an existing one keeps its
        # chunk size (an append with another one is refused)
        options["chunk_size"] = min(int(options.get("chunk_size", DEFAULT_CHUNK_WINDOWS)), int(until))
    report, since, t0 = RecordingFollowReport(), 0, time.monotonic()
    with stop_on_signals(stop) if handle_signals else contextlib.nullcontext():
        while True:
            t_poll = time.monotonic()
            n, since = append_recording(recording, params, output, length, stride, verify=report.polls == 0,
                                        since=since, **options)
            if n > report.windows:
                report.compute_seconds += time.monotonic() - t_poll
                report.written.append((time.time(), n))
                report.windows = n
            report.polls += 1
            report.seconds = time.monotonic() - t0
            if on_poll is not None:
                on_poll(report)
            if until is not None and report.windows >= until:
                report.reason = "until"
            elif stop.is_set():
                report.reason = getattr(stop, "signal", "stop")
            if report.reason:
                return report
            stop.wait(max(0.0, poll - (time.monotonic() - t_poll)))


__all__ = ["DEFAULT_CHUNK_WINDOWS", "RecordingFollowReport", "append_recording", "follow_recording",
           "landed_time", "open_recording", "recording_windows", "stored_intervals"]
