"""The chunk runner: one loop for every job that writes one output block per sample chunk.

A :class:`ChunkJob` says what to compute (a picklable function of one input block) and where it goes
(a :class:`~rocketstream.storage.chunkstore.ChunkStore`); :func:`run` does the rest, the same way for
the transform (features) and predict (labels, scores, values):

1. plan: the chunks not yet marked done (with ``verify``, the done ones are first re-read and checked:
   a torn block is recomputed, an input row that changed since refuses the run);
2. execute: graphs of at most ``GRAPH_BATCH`` chunks (the client's memory stays flat whatever the
   number of chunks), one task per chunk that reads its input rows, computes, and writes data,
   digests, marker (a task finding its chunk already done writes nothing);
3. retry: chunks still missing after a lost worker are resubmitted, up to ``retries`` times; a cluster
   that is gone altogether stops the run (:class:`~rocketstream.errors.ClusterLostError`);
4. progress: a bar per chunk on local schedulers, ``distributed.progress`` on a cluster.

Growth (:func:`grow`): before a store grows along samples, the input rows behind its done chunks are
checked against their recorded digests (all of them with ``verify``; always those of the partly filled
last chunk, which is recomputed over its new rows), so that an input whose old rows changed is refused
before anything is written; then :meth:`~rocketstream.storage.chunkstore.ChunkStore.grow` resizes the
store and :func:`run` computes the chunks not done.

Following (a job with a ``reader``): a task reads its own input rows through the reader, which answers
None for rows that have not landed yet; such a chunk is left not done (no error) and the caller tries
it again later (see :mod:`rocketstream.api.follow`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed

from .. import config
from ..errors import IdentityMismatchError, InputError, StoreError
from ..storage.chunkstore import ChunkStore, audit, check_chunk, input_digest, stored_input_digest
from ..storage.chunkwriter import chunk_done, layout_token, write_chunk
from .schedule import compute, progress_bar
from .source import RowSource

if TYPE_CHECKING:
    import dask.array as da

log = logging.getLogger("rocketstream.graph")

GRAPH_BATCH = config.GRAPH_BATCH
#: exceptions (by class name) that mean a worker was lost rather than bad input: the run retries
WORKER_LOSS = ("KilledWorker", "CommClosedError", "BrokenProcessPool")
#: chunks verified per task
VERIFY_PER_TASK = 16

#: ``compute(block, start, lengths) -> {name: rows}``: one chunk's outputs from its float32 input rows
BlockFunction = Callable[[np.ndarray, int, "np.ndarray | None"], dict[str, np.ndarray]]
#: ``reader(start, stop) -> rows or None``: input rows read by the task itself; None when they have not landed
RowReader = Callable[[int, int], "np.ndarray | None"]


@dataclass(frozen=True)
class ChunkJob:
    """One output block per sample chunk of ``source``, written into ``store``.

    ``compute`` must be picklable (a module-level function or a ``functools.partial`` of one): it is
    sent to the workers once per graph. ``lengths`` are the per-series lengths of unequal-length data
    (a task gets its chunk's slice). ``name`` names the tasks and the progress bar.

    Parameters
    ----------
    source : dask.array.Array or RowSource
        (sample, channel, time) input (a RowSource is read by each task itself).
    store : ChunkStore
        The output store; its chunking decides the chunks.
    compute : BlockFunction
        ``compute(block, start, lengths) -> {name: rows}`` for one chunk.
    lengths : numpy.ndarray, optional
        Per-series lengths of unequal-length data.
    name : str, default "chunks"
        Names the tasks and the progress bar.
    reader : RowReader, optional
        Reads a chunk's input rows in its task instead of ``source`` (picklable); a None answer leaves
        the chunk not done, without error (rows not landed yet, see :mod:`rocketstream.api.follow`).
    """

    source: da.Array | RowSource
    store: ChunkStore
    compute: BlockFunction
    lengths: np.ndarray | None = None
    name: str = "chunks"
    reader: RowReader | None = None

    def lengths_of(self, index: int) -> np.ndarray | None:
        """The lengths of chunk ``index``'s series (None for equal-length data).

        Parameters
        ----------
        index : int
            Chunk index.

        Returns
        -------
        numpy.ndarray or None
            One length per series of the chunk.
        """
        return None if self.lengths is None else np.asarray(self.lengths[slice(*self.store.bounds(index))])

    @property
    def row_reader(self) -> RowReader | None:
        """What a task reads its rows with: ``reader``, else a :class:`~rocketstream.graph.source.RowSource`
        input itself; None when the rows come from the Dask array ``source``."""
        if self.reader is not None:
            return self.reader
        return self.source if isinstance(self.source, RowSource) else None

    def input_blocks(self, chunks: list[int]) -> Iterator[Any]:
        """The input rows of each of ``chunks`` (store chunking) as Delayed objects, from a graph that
        holds only those rows.

        Parameters
        ----------
        chunks : list of int
            Chunk indices, ascending.

        Returns
        -------
        iterator of dask.delayed.Delayed
            One (rows, channels, time) block per chunk, in order.
        """
        reader = self.row_reader
        if reader is not None:
            token = tokenize(reader, self.store.path, chunks)
            return iter([dask.delayed(reader, pure=False)(*self.store.bounds(i),
                                                          dask_key_name=f"rocketstream-read-{token}-{i}")
                         for i in chunks])
        first, last = min(chunks), max(chunks)
        lo, hi = self.store.bounds(first)[0], self.store.bounds(last)[1]
        whole = {axis: -1 for axis in range(1, self.source.ndim)}  # a task needs whole series
        sub = self.source[lo:hi].rechunk({0: self.store.chunk_size, **whole})
        return iter(sub.blocks[[i - first for i in chunks]].to_delayed().ravel())


# ----------------------------------------------------------------------------------------- tasks
def _run_chunk(block: np.ndarray | None, fn: BlockFunction, index: int, start: int, path: str,
               storage_options: dict[str, Any] | None, lengths: np.ndarray | None, layout: str) -> int:
    # A task re-run after its worker died (or a chunk finished by another run) finds its marker set:
    # it neither recomputes nor rewrites the chunk. Markers are set only after data and digests.
    # ``layout``: the store's layout token, under which the worker keeps the store's arrays open.
    if chunk_done(path, storage_options, index, layout):
        audit("skip", path, index)
        return index
    if block is None:  # a reader's answer: the rows have not landed yet; tried again later
        audit("wait", path, index)
        return -1
    block = np.ascontiguousarray(block, dtype=np.float32)
    outputs = fn(block, start, lengths)
    write_chunk(path, storage_options, index, start, outputs, input_digest(block, lengths), layout)
    return index


def _collect(indices: list[int]) -> list[int]:
    return sorted(int(i) for i in indices if i >= 0)


def _check(indices: list[int], blocks: list[np.ndarray | None], lengths: list[np.ndarray | None], path: str,
           storage_options: dict[str, Any] | None, chunk_size: int, n_samples: int,
           names: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """(chunks whose data fails its digest or cannot be read, chunks whose input rows differ from the
    recorded input digest)."""
    bad, changed = [], []
    for i, block, part in zip(indices, blocks, lengths, strict=True):
        if not check_chunk(path, storage_options, i, chunk_size, n_samples, names):
            bad.append(i)
        elif block is not None:
            want = stored_input_digest(path, storage_options, i)
            if want is not None and want != input_digest(np.ascontiguousarray(block, np.float32), part):
                changed.append(i)
    return bad, changed


def _merge(parts: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    return sorted(i for p in parts for i in p[0]), sorted(i for p in parts for i in p[1])


# ---------------------------------------------------------------------------------------- graphs
def missing_chunks(store: ChunkStore) -> list[int]:
    """Indices of the chunks of ``store`` not yet marked done (logged).

    Parameters
    ----------
    store : ChunkStore

    Returns
    -------
    list of int
    """
    todo = np.flatnonzero(~store.done()).tolist()
    log.info("%s: %d of %d chunks to compute (%d already done)", store.KIND, len(todo), store.n_chunks,
             store.n_chunks - len(todo))
    return todo


def chunk_graph(job: ChunkJob, chunks: list[int]) -> tuple[Delayed, str]:
    """The graph computing ``chunks`` of the job (one task per chunk); returns it and the prefix of its
    task names (for progress). Computing it gives the sorted chunk indices.

    Parameters
    ----------
    job : ChunkJob
        What to compute and where it goes.
    chunks : list of int
        Chunk indices, ascending.

    Returns
    -------
    graph : dask.delayed.Delayed
        Computes the chunks and gives their sorted indices.
    prefix : str
        The prefix of its per-chunk task names.
    """
    store = job.store
    token = tokenize(job.source.name, store.path, job.name, chunks, job.reader)
    prefix = f"rocketstream-write-{job.name}-{token}"  # helpers and progress key on "rocketstream-write-"
    fn = dask.delayed(job.compute, name=f"rocketstream-fn-{tokenize(job.compute)}")
    layout = layout_token(store.path, store.storage_options) if chunks else ""
    tasks = [dask.delayed(_run_chunk, pure=False)(block, fn, i, store.bounds(i)[0], store.path,
                                                  store.storage_options, job.lengths_of(i), layout,
                                                  dask_key_name=f"{prefix}-{i}")
             for i, block in zip(chunks, job.input_blocks(chunks) if chunks else (), strict=True)]
    return dask.delayed(_collect, pure=False)(tasks, dask_key_name=f"rocketstream-done-{token}"), prefix


def check_graph(store: ChunkStore, chunks: list[int], job: ChunkJob | None = None) -> Delayed:
    """A Delayed giving ``(bad, changed)`` for ``chunks``: those whose data does not match its digest
    (or cannot be read), and, with a ``job``, those whose input rows no longer match the input digest
    recorded when they were written. One task per ``VERIFY_PER_TASK`` chunks.

    Parameters
    ----------
    store : ChunkStore
        The store to check.
    chunks : list of int
        Chunk indices, ascending.
    job : ChunkJob, optional
        Its input rows are compared with the recorded input digests.

    Returns
    -------
    dask.delayed.Delayed
        Computes to two sorted lists of chunk indices.
    """
    blocks: list[Any] = [None] * len(chunks)
    if job is not None and chunks and store.has_input_digests:
        blocks = list(replace(job, reader=None).input_blocks(chunks))  # the stored rows, even when following
    parts = []
    for s in range(0, len(chunks), VERIFY_PER_TASK):
        idx = chunks[s : s + VERIFY_PER_TASK]
        lengths = [job.lengths_of(i) if job is not None else None for i in idx]
        parts.append(dask.delayed(_check, pure=False)(
            idx, blocks[s : s + VERIFY_PER_TASK], lengths, store.path, store.storage_options,
            store.chunk_size, store.n_samples, store.data_names))
    return dask.delayed(_merge, pure=False)(parts)


# ------------------------------------------------------------------------------------------- run
def damaged_chunks(store: ChunkStore, scheduler: Any = "threads", workers: int | None = None,
                   job: ChunkJob | None = None) -> tuple[list[int], list[int]]:
    """``(bad, changed)`` over every chunk marked done (each is read once; see :func:`check_graph`).

    Parameters
    ----------
    store : ChunkStore
        The store to check.
    scheduler : Any, default "threads"
        Where to run the checks (see :func:`~rocketstream.graph.schedule.compute`).
    workers : int, optional
        Workers of a local scheduler.
    job : ChunkJob, optional
        Also compare the input rows with the recorded input digests.

    Returns
    -------
    bad, changed : list of int
        Chunks whose data fails its sha256 or cannot be read; chunks whose input rows changed.
    """
    marked = np.flatnonzero(store.done()).tolist()
    bad: list[int] = []
    changed: list[int] = []
    for s in range(0, len(marked), GRAPH_BATCH):
        part_bad, part_changed = compute(check_graph(store, marked[s : s + GRAPH_BATCH], job), scheduler,
                                         workers)
        bad += part_bad
        changed += part_changed
    return bad, changed


def verify_done(job: ChunkJob, target: Any, workers: int | None, action: str = "resume") -> list[int]:
    """Before resuming: unmark (so recompute) the done chunks that are torn or corrupted; refuse if the
    input rows of a done chunk differ from those it was computed from.

    Stores without digests are trusted as they are.

    Parameters
    ----------
    job : ChunkJob
        The job to resume.
    target : Any
        The scheduler, as :func:`~rocketstream.graph.schedule.session` yields it.
    workers : int or None
        Workers of a local scheduler.
    action : str, default "resume"
        What is refused, for messages.

    Returns
    -------
    list of int
        The chunks unmarked.

    Raises
    ------
    IdentityMismatchError
        The input rows of a done chunk changed.
    """
    store = job.store
    if not store.has_digests:
        log.info("%s: %s has no chunk digests (older format); trusting its done markers", action,
                 store.display)
        return []
    bad, changed = damaged_chunks(store, target, workers, job)
    if changed:
        a, b = store.bounds(changed[0])
        raise _changed_rows(store, changed[0], a, b, action, len(changed) - 1)
    if bad:
        log.warning("%s: %d chunk(s) marked done in %s fail their sha256 check (torn or corrupted: "
                    "%s); recomputing them", action, len(bad), store.display, bad[:10])
        store.reset(bad)
    else:
        log.info("%s: %d chunk(s) marked done verified against their sha256", action,
                 int(store.done().sum()))
    return bad


def _changed_rows(store: ChunkStore, chunk: int, a: int, b: int, action: str, more: int = 0
                  ) -> IdentityMismatchError:
    ident = store.input_identity or {}
    also = f" and {more} more" if more > 0 else ""
    return IdentityMismatchError(
        f"the input rows {a}-{b - 1} (chunk {chunk}{also}) differ from those the {store.KIND} in "
        f"{store.display} were computed from (input {ident.get('location', '?')}); {action} needs the same "
        "input data: restore it, or use overwrite=True / --overwrite to start over")


def partial_record(store: ChunkStore) -> dict[str, Any] | None:
    """The partly filled last chunk of ``store`` that a growth recomputes, with the recorded digest of
    its input rows: ``{chunk, start, stop, input_sha256}`` (None when the last chunk is full, not done,
    or has no recorded input digest).

    Parameters
    ----------
    store : ChunkStore

    Returns
    -------
    dict or None
    """
    n, c = store.n_samples, store.chunk_size
    if n % c == 0 or not store.done()[-1]:
        return None
    k = n // c
    digest = stored_input_digest(store.path, store.storage_options, k)
    if digest is None:
        return None
    return {"chunk": k, "start": k * c, "stop": n, "input_sha256": digest.hex()}


def check_partial(job: ChunkJob, record: dict[str, Any] | None, action: str = "append") -> None:
    """Refuse when the input rows of the partly filled chunk ``record`` (see :func:`partial_record`)
    are not those its features were computed from (they are read once, on the client).

    Parameters
    ----------
    job : ChunkJob
        Its ``source`` (and ``lengths``) are the input.
    record : dict or None
        The chunk and its recorded input digest; None checks nothing.
    action : str, default "append"
        What is refused, for messages.

    Raises
    ------
    IdentityMismatchError
        The rows differ.
    """
    if not record:
        return
    a, b = int(record["start"]), int(record["stop"])
    src = job.source
    rows = src(a, b) if isinstance(src, RowSource) else src[a:b].compute(scheduler="synchronous")
    block = np.ascontiguousarray(rows, dtype=np.float32)
    lengths = None if job.lengths is None else np.asarray(job.lengths[a:b])
    if input_digest(block, lengths).hex() != record["input_sha256"]:
        raise _changed_rows(job.store, int(record["chunk"]), a, b, action)


def grow(job: ChunkJob, n_samples: int, *, identity: dict[str, Any], new_coords: dict[str, np.ndarray],
         target: Any = None, workers: int | None = None, verify: bool = True) -> bool:
    """Grow ``job.store`` to ``n_samples`` rows of ``job.source``, refusing first (before anything is
    written) if the input rows behind its done chunks changed: with ``verify`` every done chunk is
    checked (a torn one is unmarked, to be recomputed); the partly filled last chunk always is. Then
    the store is resized (:meth:`~rocketstream.storage.chunkstore.ChunkStore.grow`); :func:`run`
    computes what is not done.

    Parameters
    ----------
    job : ChunkJob
        The job over the grown input (``source`` has at least ``n_samples`` rows).
    n_samples : int
        The store's new number of samples.
    identity : dict
        The grown input's identity, recorded in the store.
    new_coords : dict of str to numpy.ndarray
        Store array name -> values of the new rows of each per-sample coordinate.
    target, workers
        Where the checks run (see :func:`verify_done`).
    verify : bool, default True
        Check every done chunk, not only the partly filled one.

    Returns
    -------
    bool
        Whether the store changed.

    Raises
    ------
    IdentityMismatchError
        The input rows of a done chunk changed.
    """
    store = job.store
    if store.resizing:  # an interrupted growth: its record names the partly filled chunk
        record = store.resizing.get("partial")
    elif n_samples == store.n_samples:
        return False
    else:
        record = partial_record(store)
    if verify:
        verify_done(job, target, workers, action="append")
    check_partial(job, record)
    return store.grow(n_samples, identity=identity, new_coords=new_coords, partial=record)


def run(job: ChunkJob, target: Any = None, *, workers: int | None = None, progress: Any = False,
        local_bar: bool = False, retries: int = 2, verify: bool = False,
        chunks: list[int] | None = None) -> list[int]:
    """Compute every chunk of ``job`` not yet done; returns the chunk indices this run planned.

    ``target`` is what :func:`~rocketstream.graph.schedule.session` yields. ``local_bar`` shows a tqdm
    bar per chunk (local schedulers); otherwise a true ``progress`` shows ``distributed.progress``.
    ``verify`` checks the chunks already done first (see :func:`verify_done`).

    Parameters
    ----------
    job : ChunkJob
        What to compute and where it goes.
    target : Any, optional
        The scheduler (None: the current distributed client, else threads).
    workers : int, optional
        Workers of a local scheduler.
    progress : bool, default False
        Show ``distributed.progress`` on a cluster.
    local_bar : bool, default False
        Show a tqdm bar per chunk.
    retries : int, default 2
        Times the missing chunks are resubmitted after a lost worker.
    verify : bool, default False
        Verify the chunks already done first.
    chunks : list of int, optional
        Compute only these of the chunks not done.

    Returns
    -------
    list of int
        The chunks this run planned (all done when it returns, except, for a job with a ``reader``,
        those whose rows had not landed).

    Raises
    ------
    StoreError
        Chunks are still missing after ``retries + 1`` attempts.
    ClusterLostError
        The scheduler, or all its workers, went away.
    IdentityMismatchError
        With ``verify``, the input rows of a done chunk changed.
    InputError
        A chunk's input holds NaN/Inf or does not fit the model (raised by the task).
    MissingChunkError
        A chunk of a Zarr input is absent (raised by the task).
    """
    store = job.store
    if verify:
        verify_done(job, target, workers)
    todo = missing_chunks(store)
    if chunks is not None:
        todo = sorted(set(todo) & {int(i) for i in chunks})
    planned = list(todo)
    bar = progress_bar(len(todo), desc=job.name) if local_bar and todo else None
    try:
        for attempt in range(retries + 1):
            try:
                for s in range(0, len(todo), GRAPH_BATCH):  # bounded graph size
                    graph, prefix = chunk_graph(job, todo[s : s + GRAPH_BATCH])
                    compute(graph, target, workers, bar if bar is not None else progress, prefix)
            except Exception as exc:
                if type(exc).__name__ not in WORKER_LOSS or attempt == retries:
                    raise
                log.warning("%s: lost a worker (%s: %s); resubmitting the missing chunks", job.name,
                            type(exc).__name__, exc)
            done = store.done()
            todo = [i for i in todo if not done[i]]
            if not todo or job.reader is not None:  # a reader's chunks not landed: tried again later
                break
            if attempt == retries:
                raise StoreError(f"{len(todo)} chunk(s) of {store.display} are still missing after "
                                   f"{retries + 1} attempts (first {todo[:5]}); rerun with resume=True / "
                                   "--resume")
            log.warning("%s: %d chunk(s) still missing; resubmitting them", job.name, len(todo))
    finally:
        if bar is not None:
            bar.close()
    return planned  # all done now, including those finished before a retry


def failed_on_input(exc: InputError, store: ChunkStore, again: str) -> InputError:
    """The error to raise when a task found the input unusable (NaN/Inf, a series that does not fit
    the model): rerunning as is cannot help, so the message says what the store holds and that
    ``again`` finishes it once the input is fixed. The store is kept (tasks of the failed run may still
    be finishing on other threads or workers; removing it under them could lose or mix writes).

    Parameters
    ----------
    exc : InputError
        What the task raised.
    store : ChunkStore
        The store of the run.
    again : str
        The command or call that finishes the store, e.g. ``"transform ... --resume"``.

    Returns
    -------
    InputError
        The error to raise (chained to ``exc`` by the caller).
    """
    done = int(store.done().sum())
    held = f"{done} of {store.n_chunks} chunks are finished" if done else "no chunk is finished"
    return InputError(f"{exc}; {held} in {store.display}: fix the input first, then {again} completes it")


__all__ = ["GRAPH_BATCH", "WORKER_LOSS", "ChunkJob", "RowReader", "check_graph", "check_partial",
           "chunk_graph", "damaged_chunks", "failed_on_input", "grow", "missing_chunks", "partial_record",
           "run", "verify_done"]
