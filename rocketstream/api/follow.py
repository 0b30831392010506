"""Following an input while it is written: transform (or score) its chunks as they land.

:func:`follow_transform` and :func:`follow_predict` keep a features (predictions) store up to date with
a Zarr input that a writer fills or grows, until ``until`` samples are done, :func:`stop` is asked
(SIGINT / SIGTERM with ``handle_signals``), or, for an input of fixed size, every chunk is done. Each
poll (every ``poll`` seconds) re-reads the input's metadata and runs the chunk runner
(:mod:`rocketstream.graph.runner`) on the store chunks whose rows have landed. The follower holds the
output's writer lock throughout; a follower killed at any point (SIGKILL) leaves a store that the next
run (``follow``, ``resume`` or ``append``) finishes.

When rows have landed (the rule)
--------------------------------
Writers such as zarr's ``Array.append`` and xarray's ``to_zarr(append_dim="sample")`` resize an array
(its metadata) before they write the chunks of the new rows, and write each chunk whole. So a store
chunk is computed once all of these hold for its rows:

1. the input array's shape covers them (re-read at every poll) - and, with ``append``, so does the
   shape of every per-sample coordinate the store carries (a coordinate still shorter holds the rows
   back; without ``append`` the input's shape must not change);
2. every input chunk they lie in is stored: an absent chunk is one not written yet (wait; it is never
   read as the fill value);
3. those chunks decode: a chunk caught mid-write (a truncated object, on stores without atomic
   writes) fails, and is tried again at the next poll;
4. the last row inside the shape of each of those input chunks is not entirely the array's fill value:
   a chunk that was written while partly filled and not yet rewritten after the resize that extended
   it reads its new rows as the fill value;
5. their per-sample coordinates are stored and decode; and the values equal to the coordinate's fill
   value that end one of its chunks (the hazard of 4: a value that is not the fill value proves the
   rows before it written) are taken only when they read the same at two consecutive polls, as a
   coordinate's fill value may be a real value (class 0). Writers that write the coordinates before
   the data never meet this delay's cause; it costs such rows one poll of latency.

A chunk whose input objects are stored but that stays unreadable (3 or 4) for ``patience`` polls stops
the follower with an error naming it: the input is damaged, or its last series really is the fill
value (a one-shot ``transform ... --append`` reads it as it is, once the writer has finished).

Latency: rows are seen at the first poll after they land (at most ``poll`` seconds) and written after
their chunk's computation; the report gives the measured latency from that poll to the chunk's write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..core.validation import InputError
from ..errors import IdentityMismatchError, MissingChunkError
from ..graph.runner import run, verify_done
from ..graph.schedule import local_workers, session
from ..storage.chunkstore import ChunkStore
from ..storage.lock import StoreLock
from ..storage.zarrstore import CheckedArray, dims_of, missing_chunks, parent_group, plain_strings
from .inputs import Resolved, check_old_coords, grow_to_input, resolve_input, same_values

if TYPE_CHECKING:
    from .predict import PredictJob
    from .transform import TransformJob

log = logging.getLogger("rocketstream.follow")

#: seconds between polls
DEFAULT_POLL = 1.0
#: polls a stored but unreadable input chunk is waited for before the follower stops
DEFAULT_PATIENCE = 30


# ------------------------------------------------------------------------------------------ reading
def _is_fill(values: np.ndarray, fill: Any) -> np.ndarray:
    """Per row (first axis): whether every value of the row equals ``fill`` (NaN equal to NaN)."""
    values = np.asarray(values)
    rows = values.reshape(len(values), -1) if values.ndim else values.reshape(1, 1)
    if values.dtype.kind in "USTO":
        return np.all(rows.astype(str) == ("" if fill is None else str(fill)), axis=1)
    if fill is None:
        return np.zeros(len(rows), dtype=bool)
    if isinstance(fill, (float, np.floating)) and np.isnan(fill):
        return np.all(np.isnan(rows), axis=1) if values.dtype.kind in "fc" else np.zeros(len(rows), bool)
    return np.all(rows == fill, axis=1)


def whole_rows(checked: CheckedArray | None) -> None:
    """Refuse to follow an input whose stored chunks split a row (along channel or time): the landed
    rules judge a chunk by its last row, which a writer rewriting one block of it at a time could pass
    while another block still holds the fill value.

    Raises
    ------
    InputError
        The input is not a Zarr array, or its stored chunks split its rows.
    """
    if checked is None:
        raise InputError("--follow / follow needs a Zarr input (a path or URL) that a writer fills")
    if tuple(checked.stored[1:]) != tuple(checked.shape[1:]):
        raise InputError(f"{checked.where} is stored in chunks of {tuple(checked.stored)}, which split each "
                         f"series {tuple(checked.shape[1:])}; --follow needs whole series per stored chunk "
                         "(rechunk it so, e.g. chunks=(rows, channels, length)), or transform it once the "
                         "writer has finished")


class LandedRows:
    """The task-side reader of a follower (a :data:`~rocketstream.graph.runner.RowReader`): the input
    rows ``[start, stop)``, or None when they have not landed (rules 2-4 of the module docstring).

    Parameters
    ----------
    checked : CheckedArray
        The input, opened at this poll (its shape is the one the rows are judged by).
    """

    def __init__(self, checked: CheckedArray) -> None:
        self.checked = checked
        self.fill = checked.array.fill_value
        self.token = uuid.uuid4().hex  # one reader per poll: its tasks never share keys with another's

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("rocketstream-landed-rows", self.token)

    def _read(self, lo: int, hi: int) -> np.ndarray | None:
        try:
            return np.asarray(self.checked[lo:hi])
        except Exception as exc:  # absent (not written yet), or mid-write: tried again at the next poll
            log.debug("input rows %d-%d of %s not readable yet (%s: %s)", lo, hi - 1, self.checked.where,
                      type(exc).__name__, exc)
            return None

    def __call__(self, lo: int, hi: int) -> np.ndarray | None:
        block = self._read(lo, hi)
        if block is None:
            return None
        n, size = self.checked.shape[0], self.checked.stored[0]
        for k in range(lo // size, (hi - 1) // size + 1):
            last = min((k + 1) * size, n) - 1
            row = block[last - lo : last - lo + 1] if last < hi else self._read(last, last + 1)
            if row is None or _is_fill(row, self.fill)[0]:
                return None  # rule 4: a chunk written before the resize that extended it
        return block


def _stale_suspects(values: np.ndarray, landed: np.ndarray, arr: zarr.Array, lo: int) -> np.ndarray:
    """Rows (of ``values``, the rows ``lo:`` of ``arr``) that may be stale: in each chunk of ``arr``, the
    run of fill values that ends at the chunk's last row inside the array's shape. A chunk written while
    partly filled holds the fill value after its rows of then; a value that is not the fill value proves
    every row before it written."""
    fill = _is_fill(values, arr.fill_value) & landed
    suspect = np.zeros(len(values), dtype=bool)
    n, size = int(arr.shape[0]), CheckedArray(arr, "").stored[0]
    for k in range(lo // size, -(-n // size)) if n > lo else ():
        r = min((k + 1) * size, n) - 1
        while r >= max(lo, k * size) and fill[r - lo]:
            suspect[r - lo] = True
            r -= 1
    return suspect


def _coordinate_arrays(src: Resolved) -> dict[str, zarr.Array]:
    """The 1-D arrays along ``sample`` beside a Zarr input in its group (its per-sample coordinates)."""
    checked = src.checked
    group = parent_group(checked.array) if checked is not None else None
    if group is None:
        return {}
    name = checked.array.path.strip("/").rpartition("/")[2]
    return {str(k): a for k, a in sorted(group.arrays())
            if k != name and a.ndim == 1 and dims_of(a) == ("sample",) and a.dtype.kind in "iufbTUS"}


def _fill_of(arr: zarr.Array, n: int) -> np.ndarray:
    if arr.dtype.kind in "TUSO":
        return np.full(n, "" if arr.fill_value is None else str(arr.fill_value), dtype=str)
    return np.full(n, arr.fill_value, dtype=arr.dtype)


def read_landed(arr: zarr.Array, lo: int, hi: int, where: str,
                failures: dict[int, tuple[int, int, Exception]] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``lo:hi`` of a 1-D array, chunk by chunk, and which of them are stored and decode (the
    others hold the fill value; rows beyond the array's shape count as not landed).

    Parameters
    ----------
    arr : zarr.Array
        A per-sample coordinate of the input.
    lo, hi : int
        Row range.
    where : str
        The array, for messages.
    failures : dict, optional
        Filled with stored chunk index -> (first row, end row, the error it raised), for chunks that
        are stored but do not decode (absent chunks have not landed; they are not failures).

    Returns
    -------
    values : numpy.ndarray
        ``hi - lo`` values (text as ``<U``).
    landed : numpy.ndarray
        bool, one per row.
    """
    checked = CheckedArray(arr, where)
    size, n = checked.stored[0], checked.shape[0]
    parts, landed = [], np.zeros(max(0, hi - lo), dtype=bool)
    for k in range(lo // size, -(-hi // size)) if hi > lo else ():
        a, b = max(lo, k * size), min(hi, (k + 1) * size)
        values = None
        if a < n:
            try:
                values = plain_strings(np.asarray(checked[a : min(b, n)]))
            except MissingChunkError:  # not written yet
                values = None
            except Exception as exc:  # mid-write, or damaged: the caller counts how long it lasts
                values = None
                if failures is not None:
                    failures[k] = (a, min(b, n), exc)
        if values is None:
            parts.append(plain_strings(_fill_of(arr, b - a)))
            continue
        landed[a - lo : a - lo + len(values)] = True
        parts.append(np.concatenate([values, plain_strings(_fill_of(arr, b - a - len(values)))]))
    if not parts:
        return plain_strings(_fill_of(arr, 0)), landed
    return np.concatenate(parts), landed


# ------------------------------------------------------------------------------------------ stopping
@contextlib.contextmanager
def stop_on_signals(event: threading.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``event`` (the follower finishes its current batch and
    returns); a second signal raises KeyboardInterrupt at once. Only in the main thread (elsewhere
    signals cannot be handled: nothing is installed).

    Parameters
    ----------
    event : threading.Event
        Set by the first signal.

    Yields
    ------
    None
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        event.signal = signal.Signals(signum).name  # type: ignore[attr-defined]
        log.warning("%s: finishing the current batch, then stopping (again to stop at once)",
                    signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ------------------------------------------------------------------------------------------ report
@dataclass
class FollowReport:
    """What a follower did.

    Attributes
    ----------
    store : ChunkStore
        The store it kept up to date.
    reason : str
        Why it stopped: ``"until"``, ``"complete"`` (an input of fixed size is done), or the signal's
        name (``"SIGINT"``, ``"SIGTERM"``; ``"stop"`` when the event was set otherwise).
    rows_done : int
        Samples of the store whose chunk is done.
    polls : int
        Polls made.
    chunks : int
        Chunks computed by this run.
    rows : int
        Samples computed by this run (a partly filled chunk recomputed counts again).
    seconds : float
        Wall time of the run.
    compute_seconds : float
        Time spent computing chunks.
    latencies : list of float
        Per chunk computed: seconds from the poll that first saw its rows to its write.
    """

    store: ChunkStore
    reason: str = ""
    rows_done: int = 0
    polls: int = 0
    chunks: int = 0
    rows: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Samples computed per second of computing."""
        return self.rows / self.compute_seconds if self.compute_seconds > 0 else 0.0

    def line(self, kind: str = "transform") -> str:
        """One line for the command line: why it stopped, rows done, latency and throughput."""
        lat = (f"; latency {max(self.latencies):.2f} s max, {np.mean(self.latencies):.2f} s mean (from the "
               f"poll that saw the rows to their write)" if self.latencies else "")
        speed = f", {self.throughput:.0f} samples/s" if self.rows else ""
        return (f"{kind} --follow stopped ({self.reason}): {self.rows_done} of {self.store.n_samples} rows "
                f"done in {self.store.display}; {self.chunks} chunks ({self.rows} rows) computed in "
                f"{self.polls} polls over {self.seconds:.1f} s{speed}{lat}")


# ------------------------------------------------------------------------------------------ the loop
class _Follower:
    """The poll loop of :func:`follow` (one instance per run)."""

    def __init__(self, job: TransformJob | PredictJob, *, append: bool, until: int | None, poll: float,
                 patience: int, stop: threading.Event, target: Any, workers: int | None, device: Any,
                 memory_budget: int | None, verify: bool, retries: int,
                 on_poll: Callable[[FollowReport], None] | None) -> None:
        self.job, self.append, self.until, self.poll, self.patience = job, append, until, poll, patience
        self.stop, self.target, self.workers, self.device = stop, target, workers, device
        self.memory_budget, self.verify, self.retries, self.on_poll = memory_budget, verify, retries, on_poll
        self.batch = max(2, 2 * local_workers(workers))
        self.store: ChunkStore | None = None
        self.seen: dict[int, float] = {}  # chunk -> the poll time that first saw its rows
        self.waits: dict[int, int] = {}  # chunk -> polls it was tried and did not land
        self.coord_waits: dict[str, dict[int, int]] = {}  # coordinate -> its chunk -> polls undecodable
        self.fill_seen: dict[str, set[int]] = {}  # coordinate -> stale-suspect rows at the last poll

    # -- input ------------------------------------------------------------------------------------
    def resolve(self, first: bool) -> Resolved:
        src = self.job.src if first else resolve_input(self.job.source, self.job.variable,
                                                         self.job.storage_options, False)
        whole_rows(src.checked)
        return src

    def coordinates(self, src: Resolved, lo: int, hi: int, names: dict[str, str] | None = None,
                    confirm: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Rows ``lo:hi`` of the per-sample coordinates (store name -> values) and which rows have
        landed for all of them; with ``confirm``, a value equal to the fill value lands only when it
        read so at the previous confirming poll too (rule 5 of the module docstring)."""
        arrays = _coordinate_arrays(src)
        names = names if names is not None else {k: k for k in arrays}
        values, ok = {}, np.ones(max(0, hi - lo), dtype=bool)
        for name, stored_as in names.items():
            if name not in arrays:
                raise InputError(f"the input {src.desc['source']} no longer has the per-sample coordinate "
                                 f"{name!r} that {self.job.out.display} carries; restore it")
            arr = arrays[name]
            end = max(hi, int(arr.shape[0])) if confirm else hi
            failures: dict[int, tuple[int, int, Exception]] = {}
            v, landed = read_landed(arr, lo, end, f"{name!r} of {src.desc['source']}", failures)
            if confirm:  # once a poll: a stored chunk that never decodes stops the follower
                self.count_unreadable(src, name, failures)
                rows = lo + np.flatnonzero(_stale_suspects(v, landed, arr, lo))
                fresh = rows[~np.isin(rows, np.fromiter(self.fill_seen.get(name, ()), dtype=np.int64))]
                landed[fresh - lo] = False
                self.fill_seen[name] = set(rows.tolist())
            values[stored_as] = v[: hi - lo]
            ok &= landed[: hi - lo]
        return values, ok

    def count_unreadable(self, src: Resolved, name: str, failures: dict[int, tuple[int, int, Exception]]
                         ) -> None:
        """Count the polls each stored chunk of the coordinate ``name`` has failed to decode in a row;
        past ``patience`` the follower stops with an error naming it (as for the data's chunks)."""
        waits = self.coord_waits.setdefault(name, {})
        for k in [k for k in waits if k not in failures]:
            del waits[k]
        for k, (a, b, exc) in failures.items():
            waits[k] = waits.get(k, 0) + 1
            if waits[k] > self.patience:
                raise InputError(
                    f"samples {a}-{b - 1} of the per-sample coordinate {name!r} of the input "
                    f"{src.desc['source']} are stored but have not become readable in {self.patience} polls "
                    f"({type(exc).__name__}: {exc}); the input is damaged: restore that chunk (or rewrite "
                    "the coordinate), then follow again")

    def extent(self, src: Resolved, names: dict[str, str]) -> int:
        """Rows the store may cover: the input's, or with ``append`` the fewest of the data and its
        coordinates (rule 1)."""
        n = src.shape[0]
        if self.append:
            arrays = _coordinate_arrays(src)
            n = min([n] + [int(arrays[k].shape[0]) for k in names if k in arrays])
        return n

    # -- one poll ---------------------------------------------------------------------------------
    def open_store(self, src: Resolved) -> ChunkStore:
        job = self.job
        if job.resumed is not None:
            return job.resumed
        n = self.extent(src, {k: k for k in _coordinate_arrays(src)})
        values, _ = self.coordinates(src, 0, n)
        self.verify = False  # a new store: nothing to verify
        return job.store(n, values)

    def grow(self, src: Resolved, store: ChunkStore, names: dict[str, str], first: bool) -> None:
        n = self.extent(src, names)
        if not self.append:
            if n != store.n_samples:
                raise IdentityMismatchError(
                    f"the input {src.desc['source']} has now {n} samples but {store.display} holds "
                    f"{store.n_samples}; follow a growing input with append=True / --append")
            if first and self.verify:
                verify_done(self.chunk_job(src, store), self.target, self.workers)
            return
        if src.shape[0] < store.n_samples:
            store.check_growable(src.identity, None)  # refuses the shrunk input
        if n == store.n_samples and not store.resizing:
            if first and self.verify:
                verify_done(self.chunk_job(src, store), self.target, self.workers)
            return
        if n < store.n_samples:
            raise IdentityMismatchError(
                f"the input {src.desc['source']} has {n} samples (counting its per-sample coordinates) but "
                f"{store.display} holds {store.n_samples}; follow the input the store was made from")
        lo = 0 if first else store.n_samples
        values, _ = self.coordinates(src, lo, n, names)
        if first:  # the coordinates of the rows the store already holds (those of done chunks)
            check_old_coords(store, values, 0, store.n_samples)
        padded = {k: _pad_front(v, lo) for k, v in values.items()}
        grow_to_input(self.chunk_job(src, store, n), src, n, padded, target=self.target, workers=self.workers,
                      verify=first and self.verify, check_coords=False)

    def chunk_job(self, src: Resolved, store: ChunkStore, n: int | None = None, reader: Any = None) -> Any:
        n = store.n_samples if n is None else n
        return self.job.chunk_job(store, src.arr[:n], self.lengths(store, n), device=self.device,
                                  memory_budget=self.memory_budget, reader=reader)

    def lengths(self, store: ChunkStore, n: int) -> np.ndarray | None:
        """Per-series lengths of a variable-length model: the store's ``length`` coordinate (written
        before any chunk that uses it)."""
        params = self.job.params
        if not params.variable_length:
            return None
        name = store.sample_coord_names().get("length")
        if name is None:
            return None
        lengths = store.read_coords([name], 0, store.n_samples)[name].astype(np.int64)
        lengths = np.concatenate([lengths, np.full(max(0, n - len(lengths)), params.length, np.int64)])[:n]
        return None if (lengths == params.length).all() else lengths

    def ready_chunks(self, src: Resolved, store: ChunkStore, names: dict[str, str]) -> list[int]:
        """The chunks not done whose rows have landed by rules 1, 2 and 5 (3 and 4 are judged by the
        task that reads them); their coordinates are written to the store first."""
        todo = np.flatnonzero(~store.done()).tolist()
        if not todo:
            return []
        now = time.monotonic()
        for k in todo:
            self.seen.setdefault(k, now)
        lo, n = store.bounds(todo[0])[0], store.n_samples
        ok = np.ones(n - lo, dtype=bool)
        if names:
            values, ok = self.coordinates(src, lo, n, names, confirm=True)
            stored = store.read_coords(list(values), lo, n)
            rows = np.zeros(n - lo, dtype=bool)
            for k in todo:
                a, b = store.bounds(k)
                rows[a - lo : b - lo] = True
            writes = {}
            for name, v in values.items():
                old = stored[name]
                change = rows & ok & ~same_values(old, v)
                if change.any():
                    merged = old.astype(object) if old.dtype.kind == "U" else old.copy()
                    merged[change] = v[change]
                    writes[name] = plain_strings(merged)
            if writes:  # per-sample coordinates before the chunks that use them
                store.write_coords(writes, lo)
        absent = {c[0] for c in missing_chunks(src.checked)}
        size = src.checked.stored[0]
        ready = []
        for k in todo:
            a, b = store.bounds(k)
            stored_ok = not any(c in absent for c in range(a // size, (b - 1) // size + 1))
            if stored_ok and ok[a - lo : b - lo].all():
                ready.append(k)
        return ready

    def compute(self, src: Resolved, store: ChunkStore, ready: list[int], report: FollowReport) -> None:
        job = self.chunk_job(src, store, reader=LandedRows(src.checked))
        for s in range(0, len(ready), self.batch):  # a stop request is honoured between batches
            if self.stop.is_set():
                return
            part = ready[s : s + self.batch]
            t0 = time.monotonic()
            run(job, self.target, workers=self.workers, retries=self.retries, chunks=part)
            t1 = time.monotonic()
            report.compute_seconds += t1 - t0
            done = store.done()
            for k in part:
                if done[k]:
                    a, b = store.bounds(k)
                    report.chunks += 1
                    report.rows += b - a
                    report.latencies.append(t1 - self.seen.pop(k, t0))
                    self.waits.pop(k, None)
                else:
                    self.waits[k] = self.waits.get(k, 0) + 1
                    if self.waits[k] > self.patience:
                        raise self.unreadable(src, store, k)

    def unreadable(self, src: Resolved, store: ChunkStore, k: int) -> InputError:
        a, b = store.bounds(k)
        try:  # the actual error, read here on the client
            block = np.asarray(src.checked[a:b])
            why = (f"the last series of one of its input chunks is entirely the fill value "
                   f"({src.checked.array.fill_value})" if block is not None else "")
        except Exception as exc:
            why = f"it cannot be read ({type(exc).__name__}: {exc})"
        return InputError(
            f"samples {a}-{b - 1} (chunk {k}) of the input {src.desc['source']} are stored but have not "
            f"become readable in {self.patience} polls: {why}; a chunk written before a resize reads so "
            "until the writer rewrites it: if the writer has finished, check the input, then run the "
            f"one-shot `rocketstream {self.job.kind} ... --append` (it reads the rows as they are)")

    def run(self) -> FollowReport:
        t_start, first = time.monotonic(), True
        report: FollowReport | None = None
        while True:
            t_poll = time.monotonic()
            src = self.resolve(first)
            if self.store is None:
                self.store = self.open_store(src)
                report = FollowReport(self.store)
            store = self.store
            names = store.sample_coord_names()
            self.grow(src, store, names, first)
            ready = self.ready_chunks(src, store, names)
            self.compute(src, store, ready, report)
            self.job.finish(store)
            done = store.done()
            report.rows_done = int(sum(store.bounds(k)[1] - store.bounds(k)[0] for k in np.flatnonzero(done)))
            report.polls += 1
            report.seconds = time.monotonic() - t_start
            if self.on_poll is not None:
                self.on_poll(report)
            if self.until is not None and report.rows_done >= self.until:
                report.reason = "until"
            elif self.stop.is_set():
                report.reason = getattr(self.stop, "signal", "stop")
            elif not self.append and done.all():
                report.reason = "complete"
            if report.reason:
                return report
            first = False
            self.stop.wait(max(0.0, self.poll - (time.monotonic() - t_poll)))


def _pad_front(values: np.ndarray, lo: int) -> np.ndarray:
    """``values`` placed at rows ``lo:`` of an array from row 0 (the rows before are never read)."""
    if lo == 0:
        return values
    return np.concatenate([np.zeros(lo, dtype=values.dtype) if values.dtype.kind != "U"
                           else np.full(lo, "", dtype=values.dtype), values])


def follow(job: TransformJob | PredictJob, *, append: bool = False, until: int | None = None,
           poll: float = DEFAULT_POLL, patience: int = DEFAULT_PATIENCE, stop: threading.Event | None = None,
           handle_signals: bool = True, scheduler: Any = None, workers: int | None = None, device: Any = None,
           memory_budget: int | None = None, verify: bool = True, retries: int = 2,
           on_poll: Callable[[FollowReport], None] | None = None) -> FollowReport:
    """Keep the store of ``job`` up to date with its input until ``until`` samples are done, ``stop``
    is set (or, with ``handle_signals``, SIGINT / SIGTERM arrives), or an input of fixed size is done.

    Parameters
    ----------
    job : TransformJob or PredictJob
        Made with ``follow=True`` (checked, nothing written yet).
    append, until, poll, patience, stop, handle_signals, scheduler, workers, device, memory_budget, verify,
    retries, on_poll
        As for :func:`follow_transform`.

    Returns
    -------
    FollowReport
    """
    if poll <= 0:
        raise InputError(f"poll must be a positive number of seconds, got {poll}")
    if until is not None and (isinstance(until, bool) or int(until) < 1):
        raise InputError(f"until must be a positive number of samples, got {until}")
    stop = stop if stop is not None else threading.Event()
    signals = stop_on_signals(stop) if handle_signals else contextlib.nullcontext()
    with signals, session(scheduler) as target:
        job.preflight(target, device, memory_budget)
        with StoreLock(job.out.target, job.storage_options):
            follower = _Follower(job, append=append, until=until, poll=poll, patience=patience, stop=stop,
                                 target=target, workers=workers, device=device, memory_budget=memory_budget,
                                 verify=verify, retries=retries, on_poll=on_poll)
            report = follower.run()
    log.info(report.line(job.kind))
    return report


def _check_followable(source: Any, fill_missing: bool) -> None:
    if not isinstance(source, (str, os.PathLike)) or str(source).endswith(".npy"):
        raise InputError("following needs a Zarr store path or URL as the input (it is opened again at "
                         f"every poll), not {type(source).__name__}")
    if fill_missing:
        raise InputError("fill_missing / --fill-missing-chunks cannot be used with follow: while following, "
                         "an absent chunk is one not written yet")


def follow_transform(source: str | os.PathLike, params: Any, output: str | os.PathLike, *,
                     append: bool = False, until: int | None = None, poll: float = DEFAULT_POLL,
                     patience: int = DEFAULT_PATIENCE, stop: threading.Event | None = None,
                     handle_signals: bool = True, variable: str | None = None, chunk_size: int | None = None,
                     overwrite: bool = False, device: Any = None, memory_budget: int | None = None,
                     scheduler: Any = None, workers: int | None = None,
                     storage_options: dict[str, Any] | None = None, verify: bool = True, retries: int = 2,
                     on_poll: Callable[[FollowReport], None] | None = None) -> FollowReport:
    """Transform a Zarr input into the features store ``output`` as its chunks land, and keep doing so.

    An existing store is continued (as with ``resume``; with ``append`` it also grows with the input,
    see :func:`~rocketstream.api.transform.run_transform`), else one is made. Each poll computes the
    store chunks whose rows have landed (the rule is in the module docstring) with the chunk runner;
    the store is always one that ``resume`` / ``append`` (or another follower) finishes.

    Parameters
    ----------
    source : str or os.PathLike
        A Zarr store path or fsspec URL (opened again at every poll).
    params : MiniRocketParameters, str or os.PathLike
        A fitted model, or its JSON file.
    output : str or os.PathLike
        The features store.
    append : bool, default False
        Follow an input that grows along samples (the store grows with it); without it the input's
        shape must stay as it is, and the follower stops once every chunk is done.
    until : int, optional
        Stop once this many samples are done.
    poll : float, default 1.0
        Seconds between polls.
    patience : int, default 30
        Polls a stored but unreadable input chunk is waited for before the follower stops.
    stop : threading.Event, optional
        Set it to stop the follower after its current batch.
    handle_signals : bool, default True
        In the main thread, SIGINT / SIGTERM set ``stop`` (a second one raises KeyboardInterrupt).
    variable, chunk_size, overwrite, device, memory_budget, scheduler, workers, storage_options, verify
        As for :func:`~rocketstream.api.transform.run_transform` (``verify``: check the chunks the
        store already holds when the follower starts).
    retries : int, default 2
        Times chunks are resubmitted after lost workers, per poll.
    on_poll : callable, optional
        Called with the :class:`FollowReport` after every poll.

    Returns
    -------
    FollowReport
        Why it stopped, the rows done, latency and throughput.

    Raises
    ------
    InputError
        Not a Zarr path, ``fill_missing``, a bad ``poll`` or ``until``, a chunk that stays unreadable,
        or any check of :class:`~rocketstream.api.transform.TransformJob`.
    IdentityMismatchError
        The store was made from another input or model, the old rows changed, or (without
        ``append``) the input's size changed.
    FileExistsError, UnsafeOutputError, PreflightError, StoreLockedError, ClusterLostError
        As for :func:`~rocketstream.api.transform.run_transform`.
    """
    from .transform import TransformJob

    _check_followable(source, False)
    job = TransformJob(source, params, output, variable=variable, chunk_size=chunk_size, resume=False,
                       overwrite=overwrite, lengths=None, storage_options=storage_options, fill_missing=False,
                       append=append, follow=True)
    return follow(job, append=append, until=until, poll=poll, patience=patience, stop=stop,
                  handle_signals=handle_signals, scheduler=scheduler, workers=workers, device=device,
                  memory_budget=memory_budget, verify=verify, retries=retries, on_poll=on_poll)


def follow_predict(source: str | os.PathLike, model_params: Any, head: Any, output: str | os.PathLike, *,
                   append: bool = False, until: int | None = None, poll: float = DEFAULT_POLL,
                   patience: int = DEFAULT_PATIENCE, stop: threading.Event | None = None,
                   handle_signals: bool = True, variable: str | None = None, chunk_size: int | None = None,
                   overwrite: bool = False, device: Any = None, scheduler: Any = None, verify: bool = True,
                   retries: int = 2, on_poll: Callable[[FollowReport], None] | None = None) -> FollowReport:
    """Score a Zarr input into the predictions store ``output`` as its series arrive (the follower of
    :func:`follow_transform`, applying the head; the store is marked complete whenever every chunk is).

    Parameters
    ----------
    source, output, append, until, poll, patience, stop, handle_signals, variable, chunk_size, overwrite,
    device, scheduler, verify, retries, on_poll
        As for :func:`follow_transform`.
    model_params : MiniRocketParameters, str or os.PathLike
        A fitted model or its JSON file.
    head : Head, str or os.PathLike
        A fitted head (trained on this model's features) or its file.

    Returns
    -------
    FollowReport

    Raises
    ------
    InputError, IdentityMismatchError, FileExistsError, UnsafeOutputError, PreflightError, StoreLockedError
        As for :func:`follow_transform` and :func:`~rocketstream.api.predict.predict`.
    """
    from .predict import PredictJob

    _check_followable(source, False)
    job = PredictJob(source, model_params, head, output, variable=variable, chunk_size=chunk_size,
                     overwrite=overwrite, resume=False, fill_missing=False, append=append, follow=True)
    return follow(job, append=append, until=until, poll=poll, patience=patience, stop=stop,
                  handle_signals=handle_signals, scheduler=scheduler, device=device, verify=verify,
                  retries=retries, on_poll=on_poll)


__all__ = ["DEFAULT_PATIENCE", "DEFAULT_POLL", "FollowReport", "LandedRows", "follow", "follow_predict",
           "follow_transform", "read_landed", "stop_on_signals"]
