"""A store of per-sample-chunk outputs with done markers and digests: what every per-chunk job writes.

The features store and the predictions store are both ``ChunkStore``s. A store is a Zarr group with

    OUT.zarr/                  attrs["rocketstream"] = {format, format_version, n_samples, chunk_size, ...}
      <data arrays>            (sample, ...) arrays, chunked by ``chunk_size`` samples (the store's kind
                               says which: ``features``, or ``label``/``proba``/``decision``/``value``)
      chunk_done   (chunk,)    uint8, one Zarr chunk per marker, set only after the chunk's data and digests
      chunk_sha256 (chunk, 32) sha256 of the chunk's data arrays (in layout order, little-endian bytes)
      input_sha256 (chunk, 32) sha256 of the input rows the chunk was computed from

Write order per chunk: data, digests, marker. A crash can leave data without a marker (recomputed on
resume) or, on storage without atomic object writes, torn data under a marker: resume re-hashes marked
chunks against their digests and recomputes the ones that fail. Creation writes the format tag first and
the full attributes last: a store whose creation was interrupted is recognised as rocketstream's
(``overwrite`` may replace it) but never as usable. The attributes also record the input's identity
(resolved location without credentials, variable, shape, chunking, dtype), so that resume refuses
another input; the input digests let it refuse changed rows.

Growth (append): a store grows along samples with :meth:`ChunkStore.grow`, in an order that a crash at
any point leaves either finishable or clearly refused, never looking complete:

1. ``attrs["rocketstream"]["resizing"] = {from, to, partial, started}`` (and ``complete = false``): from
   here every reader refuses the store, naming the fix (``--append``); the attribute write also drops
   the stale consolidated metadata;
2. the done marker and digests of the partly filled old last chunk are cleared (it is recomputed over
   its new rows; the digest of its old input rows is kept in ``resizing.partial`` for the next run);
3. every (sample, ...) array, then every (chunk, ...) array is resized, and the new rows of the
   per-sample coordinates are written (new chunks read as not done: no marker is stored for them);
4. the attributes are committed: ``n_samples``, ``n_chunks``, the input identity, one more ``history``
   entry (time, rows added, total), and ``resizing`` removed;
5. the consolidated metadata is written again.

A run that finds ``resizing`` set (killed between 1 and 4) re-checks the old rows of the partly filled
chunk against ``resizing.partial`` and repeats 2-5 for the input's current size (each step is
idempotent). After 4 the new chunks are simply not done: ``--resume`` or ``--append`` computes them.

The task-side functions (:func:`~rocketstream.storage.chunkwriter.chunk_done` and
:func:`~rocketstream.storage.chunkwriter.write_chunk`, which cache the opened arrays per process, and
:func:`check_chunk`, :func:`stored_input_digest`) take the store's path, so a task carries a few
strings, not a handle.

Audit log: with ``ROCKETSTREAM_AUDIT_LOG=/path/file`` in the environment of the processes that write
(workers included), every chunk write appends one JSON line ``{"event": "write", "chunk", "sha256",
"pid", "host", ...}`` (``"skip"`` when a re-run task finds its chunk already done). Lines are appended
with ``O_APPEND`` and are shorter than ``PIPE_BUF``, so lines from concurrent local processes never mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from typing import Any, ClassVar

import numpy as np
import zarr

from .. import config
from ..config import env_path
from ..errors import IdentityMismatchError, InputError, StoreError
from .consolidated import consolidate
from .locations import Location, redact, resolve
from .outputs import STORE_FORMATS, existing_output, remove_output
from .zarrstore import WRITE_ALL, dims_of, plain_strings

log = logging.getLogger("rocketstream.storage")

ATTR = "rocketstream"
MARKERS = "chunk_done"
DIGESTS = "chunk_sha256"
INPUT_DIGESTS = "input_sha256"
#: markers read per request, so that reading them needs memory independent of the number of chunks
MARKER_BATCH = config.MARKER_BATCH
AUDIT_ENV = config.ENV_AUDIT_LOG
#: what each array of a layout is: shape, chunks, dtype, dimension names, and extra create_array options
Layout = dict[str, tuple[tuple[int, ...], tuple[int, ...], Any, tuple[str, ...], dict[str, Any]]]
#: the attribute that marks a growth in progress (see the module docstring)
RESIZING = "resizing"


def now_iso() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (for store histories)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


class ChunkStore:
    """Handle on a store of per-chunk outputs; cheap to open, safe to use from many processes at once.

    Subclasses set ``KIND`` (a key of :data:`~rocketstream.storage.outputs.STORE_FORMATS`), ``VERSION``
    and ``MAKER`` (the command that writes such a store, for messages). Open a store with :meth:`open`;
    the subclasses create one with their ``create``.

    Parameters
    ----------
    path : str, os.PathLike or Location
        Where the store is.
    group : zarr.Group
        The store's group, already open.
    storage_options : dict, optional
        fsspec options for a URL.
    writing : bool, default True
        Whether the store is opened to write (only changes the fix that messages suggest).
    resizing_ok : bool, default False
        Accept a store whose growth was interrupted (only the append path finishes one).

    Attributes
    ----------
    location : Location
        The resolved location; ``path`` (absolute, what tasks open) and ``display`` (without credentials)
        come from it.
    meta : dict
        The ``rocketstream`` attributes.
    data_names : tuple of str
        The per-chunk data arrays, in digest order.
    marked : bool
        Whether the store has done markers (False for stores older than ``MARKED_SINCE``).
    resizing : dict or None
        The record of an interrupted growth (``from``, ``to``, ``partial``), else None.

    Raises
    ------
    StoreError
        The group is not a store of this kind, its creation was interrupted, or (without
        ``resizing_ok``) its growth was interrupted.
    """

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    MAKER: ClassVar[str] = ""
    #: the first format version with done markers (older stores only say whether they are complete)
    MARKED_SINCE: ClassVar[int] = 1

    def __init__(self, path: str | os.PathLike | Location, group: zarr.Group,
                 storage_options: dict[str, Any] | None = None, writing: bool = True,
                 resizing_ok: bool = False) -> None:
        self.location = resolve(path)
        self.path = self.location.target  # absolute, so tasks on any worker open the same store
        self.display = self.location.display
        self.group = group
        self.storage_options = storage_options
        meta = dict(group.attrs).get(ATTR)
        fix = ("choose another output or pass overwrite=True / --overwrite to replace it" if writing else
               f"give a store made by `{self.MAKER}`")
        found = meta.get("format") if isinstance(meta, dict) else None
        if found in STORE_FORMATS.values() and found != self.format:
            other = next(k for k, v in STORE_FORMATS.items() if v == found)
            raise StoreError(f"{self.display} is a rocketstream {other} store, not a {self.KIND} store; "
                             + fix)
        if found != self.format:
            raise StoreError(f"{self.display} is not a rocketstream {self.KIND} store (no {ATTR!r} "
                             "attributes); " + fix)
        names = self.data_names_of(meta)
        self.marked = int(meta.get("format_version", 0)) >= self.MARKED_SINCE
        missing = "n_samples" not in meta or (self.marked and MARKERS not in group)
        if missing or any(n not in group for n in names):
            raise StoreError(f"{self.KIND} store {self.display} is incomplete (its creation was "
                             f"interrupted); rerun `{self.MAKER}` with overwrite=True / --overwrite")
        self.meta: dict[str, Any] = meta
        self.data_names: tuple[str, ...] = names
        self.resizing: dict[str, Any] | None = meta.get(RESIZING)
        if self.resizing and not resizing_ok:
            r = self.resizing
            raise StoreError(f"{self.KIND} store {self.display} is being grown from {r.get('from')} to "
                             f"{r.get('to')} samples, and that append was interrupted (or is running); "
                             f"finish it with `{self.MAKER} ... --append` / append=True (the same input)")

    @property
    def format(self) -> str:
        """The format tag stores of this kind carry, e.g. ``"rocketstream.features"``."""
        return STORE_FORMATS[self.KIND]

    @classmethod
    def data_names_of(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        """The per-chunk data arrays of a store with attributes ``meta``, in digest order.

        Parameters
        ----------
        meta : dict
            The store's ``rocketstream`` attributes.

        Returns
        -------
        tuple of str
        """
        return tuple(meta.get("data_arrays") or ())

    # -- opening and creating -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | Location, mode: str = "r",
             storage_options: dict[str, Any] | None = None, resizing_ok: bool = False) -> Any:
        """Open an existing store (``mode`` "r" or "r+").

        Parameters
        ----------
        path : str, os.PathLike or Location
            Local path or fsspec URL.
        mode : {"r", "r+"}, default "r"
            Read only, or read and write (to resume).
        storage_options : dict, optional
            fsspec options for a URL.
        resizing_ok : bool, default False
            Accept a store whose growth was interrupted (to finish it, or to describe it).

        Returns
        -------
        ChunkStore
            An instance of the class it is called on.

        Raises
        ------
        FileNotFoundError
            No store at ``path``.
        StoreError
            Not a Zarr group, a store of another kind, or a store whose creation was interrupted.
        """
        loc = resolve(path)
        if not loc.url and not os.path.isdir(loc.target):
            raise FileNotFoundError(f"no {cls.KIND} store at {loc.display}")
        try:
            group = open_group(loc.target, storage_options, mode)
        except (FileNotFoundError, KeyError):
            raise FileNotFoundError(f"no {cls.KIND} store at {loc.display}") from None
        except Exception as exc:
            raise StoreError(f"{loc.display} is not a Zarr group ({type(exc).__name__}); expected a "
                             f"rocketstream {cls.KIND} store") from exc
        return cls(loc, group, storage_options, writing=mode != "r", resizing_ok=resizing_ok)

    @classmethod
    def _create(cls, path: str | os.PathLike | Location, *, n_samples: int, chunk_size: int, layout: Layout,
                meta: dict[str, Any], coords: dict[str, tuple[str, np.ndarray]] | None = None,
                overwrite: bool = False, storage_options: dict[str, Any] | None = None) -> Any:
        """Create an empty store with the data arrays of ``layout`` and the coordinate arrays ``coords``
        (name -> (dimension, values)); refuses to replace anything unless ``overwrite``, and then only a
        store of the same kind (see :mod:`rocketstream.storage.outputs`)."""
        loc = resolve(path)
        if existing_output(loc, cls.KIND, storage_options):
            if not overwrite:
                raise FileExistsError(f"output {loc.display} already exists; pass overwrite=True / "
                                      "--overwrite to replace it, or resume=True / --resume to finish it")
            remove_output(loc, cls.KIND, storage_options)
        n_chunks = -(-n_samples // chunk_size)
        tag = {"format": STORE_FORMATS[cls.KIND], "format_version": cls.VERSION}
        meta = {**tag, "n_samples": int(n_samples), "chunk_size": int(chunk_size), "n_chunks": int(n_chunks),
                "data_arrays": list(layout), **meta,
                "history": [{"time": now_iso(), "added": int(n_samples), "n_samples": int(n_samples)}]}
        group = zarr.open_group(loc.target, mode="w-", zarr_format=3,
                                storage_options=storage_options if loc.url else None)
        group.attrs[ATTR] = tag  # first
        for name, (dim, values) in (coords or {}).items():
            write_coord(group, name, np.asarray(values), dim)
        group.create_array(MARKERS, shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0,
                           compressors=None, dimension_names=("chunk",))
        for name in (DIGESTS, INPUT_DIGESTS):
            group.create_array(name, shape=(n_chunks, 32), chunks=(1, 32), dtype="uint8", fill_value=0,
                               compressors=None, dimension_names=("chunk", "sha256_byte"))
        for name, (shape, chunks, dtype, dims, extra) in layout.items():
            group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, dimension_names=dims,
                               config=WRITE_ALL, **extra)
        group.attrs[ATTR] = meta  # last: a store without it is refused as half-created
        # the metadata is final now (tasks write only chunks): consolidate it for xarray.open_zarr
        return cls(loc, consolidate(group), storage_options)

    # -- layout ---------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of samples (rows) of every data array."""
        return int(self.meta["n_samples"])

    @property
    def chunk_size(self) -> int:
        """Samples per chunk (the last chunk may be shorter)."""
        return int(self.meta["chunk_size"])

    @property
    def n_chunks(self) -> int:
        """Number of sample chunks."""
        return int(self.meta["n_chunks"])

    def bounds(self, i: int) -> tuple[int, int]:
        """Sample range ``[start, stop)`` of chunk ``i``.

        Parameters
        ----------
        i : int
            Chunk index.

        Returns
        -------
        start, stop : int
        """
        start = i * self.chunk_size
        return start, min(start + self.chunk_size, self.n_samples)

    @property
    def input_identity(self) -> dict[str, Any] | None:
        """What the outputs were computed from (None for stores that recorded no identity)."""
        return self.meta.get("input")

    @property
    def has_digests(self) -> bool:
        """False for stores written before per-chunk digests: they cannot be verified."""
        return DIGESTS in self.group

    @property
    def has_input_digests(self) -> bool:
        """False for stores that do not record the digests of their input rows."""
        return INPUT_DIGESTS in self.group

    # -- markers ---------------------------------------------------------------------------------
    def done(self) -> np.ndarray:
        """Boolean (n_chunks,) array: which chunks are marked fully written (read in batches).

        An unreadable (torn) marker counts as not done; a store without markers is done or not as a whole.

        Returns
        -------
        numpy.ndarray
            bool (n_chunks,).
        """
        if not self.marked:  # an old store without markers: complete or not as a whole
            return np.full(self.n_chunks, bool(self.meta.get("complete")), dtype=bool)
        markers = self.group[MARKERS]
        out = np.zeros(self.n_chunks, dtype=bool)
        for lo in range(0, self.n_chunks, MARKER_BATCH):
            hi = min(lo + MARKER_BATCH, self.n_chunks)
            try:
                out[lo:hi] = np.asarray(markers[lo:hi]) == 1
            except Exception:  # a marker torn by a crash: read one by one, unreadable means not done
                for i in range(lo, hi):
                    try:
                        out[i] = markers[i] == 1
                    except Exception:
                        out[i] = False
        return out

    def is_complete(self) -> bool:
        """Whether every chunk is marked done.

        Returns
        -------
        bool
        """
        return bool(self.done().all())

    def verify_chunk(self, index: int) -> bool:
        """True if chunk ``index`` is marked done and its data reads back with its stored sha256.

        Parameters
        ----------
        index : int
            Chunk index.

        Returns
        -------
        bool
        """
        return check_chunk(self.path, self.storage_options, index, self.chunk_size, self.n_samples,
                           self.data_names)

    def reset(self, indices: list[int]) -> None:
        """Clear the done markers (and digests) of ``indices``, so that resume recomputes them.

        Parameters
        ----------
        indices : list of int
            Chunk indices.
        """
        for i in indices:
            self.group[MARKERS][i] = 0
            for name in (DIGESTS, INPUT_DIGESTS):
                if name in self.group:
                    self.group[name][i] = 0

    def check_resumable(self, identity: dict[str, Any], chunk_size: int | None) -> None:
        """Refuse to resume from another input, or with another chunking (one line naming both).

        Parameters
        ----------
        identity : dict
            The identity of the input given now (location, variable, shape, chunks, dtype).
        chunk_size : int or None
            The chunk size asked for now; None accepts the store's.

        Raises
        ------
        InputError
            ``chunk_size`` differs from the store's.
        IdentityMismatchError
            The input is not the one the store was made from.
        """
        if chunk_size is not None and int(chunk_size) != self.chunk_size:
            raise InputError(f"{self.display} is chunked by {self.chunk_size} samples; resume with the same "
                             f"chunk size (or none), not {chunk_size}")
        compare_identity(self.input_identity, identity, self.display, self.KIND)
        if self.n_samples != identity["shape"][0]:
            grew = ("; if the input grew along samples, grow the store with append=True / --append"
                    if identity["shape"][0] > self.n_samples else "")
            raise IdentityMismatchError(f"{self.display} was made for {self.n_samples} samples but the input "
                                        f"has {identity['shape'][0]}; resume with the same input, or "
                                        f"overwrite=True{grew}")


    # -- growth ---------------------------------------------------------------------------------
    def sample_coord_names(self) -> dict[str, str]:
        """The per-sample coordinates the store carries: input name -> array name in the store.

        Read from ``input_coords`` in the attributes when recorded, else every 1-D array along
        ``sample`` that is not a data array (same name as in the input).

        Returns
        -------
        dict of str to str
        """
        recorded = self.meta.get("input_coords")
        if isinstance(recorded, dict):
            return {str(k): str(v) for k, v in recorded.items()}
        group = open_group(self.path, self.storage_options, "r")
        return {name: name for name, arr in sorted(group.arrays())
                if arr.ndim == 1 and dims_of(arr) == ("sample",) and name not in self.data_names}

    def read_coords(self, names: list[str] | tuple[str, ...], lo: int = 0, hi: int | None = None
                    ) -> dict[str, np.ndarray]:
        """Rows ``lo:hi`` of the store's arrays ``names`` (text as ``<U``).

        Parameters
        ----------
        names : sequence of str
            Array names in the store.
        lo, hi : int
            Row range (default: all rows).

        Returns
        -------
        dict of str to numpy.ndarray
        """
        group = open_group(self.path, self.storage_options, "r")
        hi = self.n_samples if hi is None else hi
        return {name: plain_strings(np.asarray(group[name][lo:hi])) for name in names}

    def write_coords(self, values: dict[str, np.ndarray], lo: int) -> None:
        """Write ``values`` (array name -> rows) into the store's coordinate arrays at rows ``lo:``
        (every chunk stored, even one equal to the fill value).

        Parameters
        ----------
        values : dict of str to numpy.ndarray
            Array name -> new values.
        lo : int
            First row.
        """
        group = open_group(self.path, self.storage_options, "r+")
        for name, v in values.items():
            if len(v):
                group[name].with_config(WRITE_ALL)[lo : lo + len(v)] = v

    def check_growable(self, identity: dict[str, Any], chunk_size: int | None) -> None:
        """Refuse to grow the store from another input (location, variable, dtype, channels or length)
        or one with fewer samples, or with another chunk size.

        Parameters
        ----------
        identity : dict
            The identity of the input given now.
        chunk_size : int or None
            The chunk size asked for now; None accepts the store's.

        Raises
        ------
        InputError
            ``chunk_size`` differs from the store's.
        IdentityMismatchError
            Another input, or one with fewer samples than the store holds.
        """
        if chunk_size is not None and int(chunk_size) != self.chunk_size:
            raise InputError(f"{self.display} is chunked by {self.chunk_size} samples; append with the same "
                             f"chunk size (or none), not {chunk_size}")
        stored = self.input_identity
        compare_identity(stored, identity, self.display, self.KIND, "append",
                         keys=("location", "variable", "dtype"))
        if stored and list(stored.get("shape") or [])[1:] != list(identity["shape"])[1:]:
            raise IdentityMismatchError(
                f"the {self.KIND} in {self.display} were made from series of shape "
                f"{tuple(stored['shape'][1:])} (channels, length) but the input given has "
                f"{tuple(identity['shape'][1:])}; append needs the same input, grown along samples only")
        if identity["shape"][0] < self.n_samples:
            raise IdentityMismatchError(
                f"{self.display} holds {self.n_samples} samples but the input has {identity['shape'][0]}: "
                "append needs the input it was made from, grown along samples (never shrunk); use "
                "overwrite=True / --overwrite to start over")

    def grow(self, n_samples: int, *, identity: dict[str, Any], new_coords: dict[str, np.ndarray],
             partial: dict[str, Any] | None = None) -> bool:
        """Grow the store to ``n_samples`` rows, in the crash-safe order of the module docstring.

        The new chunks (and the partly filled old last chunk) are left not done: the chunk runner
        computes them. Finishes an interrupted growth (``resizing`` set) as well.

        Parameters
        ----------
        n_samples : int
            The new number of samples (at least the current one).
        identity : dict
            The input's identity, recorded at the commit.
        new_coords : dict of str to numpy.ndarray
            Store array name -> values of the new rows ``n_samples_old:n_samples`` of each per-sample
            coordinate.
        partial : dict, optional
            ``{chunk, start, stop, input_sha256}`` of the partly filled old last chunk (kept while the
            growth is in progress, so that an interrupted one can still check those rows).

        Returns
        -------
        bool
            Whether anything changed.

        Raises
        ------
        StoreError
            ``n_samples`` is smaller than the store.
        """
        old, n, c = self.n_samples, int(n_samples), self.chunk_size
        if n < old:
            raise StoreError(f"{self.display} holds {old} samples; it cannot grow to {n}")
        if n == old and not self.resizing:
            return False
        n_chunks = -(-n // c)
        group = open_group(self.path, self.storage_options, "r+")
        pending = {**self.meta, RESIZING: {"from": old, "to": n, "partial": partial, "started": now_iso()}}
        if "complete" in pending:
            pending["complete"] = False
        group.attrs[ATTR] = pending  # 1: readers refuse the store from here (and the stale
        self.meta, self.resizing = pending, pending[RESIZING]  # consolidated metadata is gone)
        if old % c and self.marked:  # 2: the partly filled last chunk is recomputed over its new rows
            k = old // c
            group[MARKERS][k] = 0
            for name in (DIGESTS, INPUT_DIGESTS):
                if name in group:
                    group[name][k] = 0
        arrays = sorted(group.arrays())  # 3: data and coordinates, then markers and digests
        for along, size in (("sample", n), ("chunk", n_chunks)):
            for _, arr in arrays:
                if (dims_of(arr) or ("",))[0] == along and arr.shape[0] != size:
                    arr.resize((size, *arr.shape[1:]))
        for name, values in new_coords.items():
            if n > old:
                group[name].with_config(WRITE_ALL)[old:n] = np.asarray(values)[: n - old]
        history = list(self.meta.get("history") or [])
        if n > old:
            history.append({"time": now_iso(), "added": n - old, "n_samples": n})
        final = {k: v for k, v in pending.items() if k != RESIZING}
        final.update(n_samples=n, n_chunks=n_chunks, input=identity, history=history)
        group.attrs[ATTR] = final  # 4: committed
        self.meta, self.resizing = final, None
        self.group = consolidate(group)  # 5
        log.info("%s: grew %s from %d to %d samples (%d chunks)", self.KIND, self.display, old, n, n_chunks)
        return True

    @property
    def history(self) -> list[dict[str, Any]]:
        """When rows were added: ``{time, added, n_samples}`` per creation or growth, oldest first."""
        return list(self.meta.get("history") or [])


# ------------------------------------------------------------------------------------------ digests
def digest_bytes(values: np.ndarray) -> bytes:
    """The bytes a digest covers: little-endian numbers, or UTF-8 text joined by NUL for strings.

    Parameters
    ----------
    values : numpy.ndarray
        Numbers or strings.

    Returns
    -------
    bytes
    """
    a = np.asarray(values)
    if a.dtype.kind in "OUST":
        return "\0".join(str(v) for v in a.ravel().tolist()).encode()
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def outputs_digest(outputs: dict[str, np.ndarray], names: tuple[str, ...] | list[str]) -> bytes:
    """sha256 of a chunk's data arrays, in the store's layout order.

    Parameters
    ----------
    outputs : dict of str to numpy.ndarray
        The chunk's arrays by name.
    names : sequence of str
        The order to hash them in.

    Returns
    -------
    bytes
        The 32-byte digest.
    """
    h = hashlib.sha256()
    for name in names:
        h.update(digest_bytes(outputs[name]))
    return h.digest()


def block_digest(block: np.ndarray) -> bytes:
    """sha256 of a feature block as little-endian float32 bytes (what the store holds).

    Parameters
    ----------
    block : numpy.ndarray
        (rows, features) values.

    Returns
    -------
    bytes
        The 32-byte digest.
    """
    return hashlib.sha256(np.ascontiguousarray(block, dtype="<f4").tobytes()).digest()


def input_digest(block: np.ndarray, lengths: np.ndarray | None = None) -> bytes:
    """sha256 of the input rows a chunk is computed from: their float32 values (what the transform
    sees) and, for unequal lengths, each series' length.

    Parameters
    ----------
    block : numpy.ndarray
        The chunk's input rows.
    lengths : numpy.ndarray, optional
        The rows' own lengths (unequal-length data).

    Returns
    -------
    bytes
        The 32-byte digest.
    """
    h = hashlib.sha256(np.ascontiguousarray(block, dtype="<f4").tobytes())
    if lengths is not None:
        h.update(np.ascontiguousarray(lengths, dtype="<i8").tobytes())
    return h.digest()


# ------------------------------------------------------------------------------------- task side
def open_group(path: str, storage_options: dict[str, Any] | None, mode: str = "r+") -> zarr.Group:
    """Open the Zarr group of a store (``storage_options`` apply to URLs only).

    Parameters
    ----------
    path : str
        Local path or fsspec URL.
    storage_options : dict or None
        fsspec options.
    mode : str, default "r+"
        Zarr open mode.

    Returns
    -------
    zarr.Group
    """
    return zarr.open_group(path, mode=mode, storage_options=storage_options if "://" in path else None,
                           use_consolidated=False)


def audit(event: str, path: str, index: int, **fields: Any) -> None:
    """Append one line to the audit log named by ``$ROCKETSTREAM_AUDIT_LOG`` (if set).

    Parameters
    ----------
    event : str
        ``"write"`` or ``"skip"``.
    path : str
        The store (credentials are removed from the line).
    index : int
        Chunk index.
    **fields
        More JSON values for the line (rows, sha256...).
    """
    target = env_path(AUDIT_ENV)
    if not target:
        return
    line = json.dumps({"event": event, "store": redact(str(path)), "chunk": int(index), "pid": os.getpid(),
                       "host": socket.gethostname(), "time": time.time(), **fields}) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def check_chunk(path: str, storage_options: dict[str, Any] | None, index: int, chunk_size: int,
                n_samples: int, names: tuple[str, ...] | None = None) -> bool:
    """True if chunk ``index`` is marked done and its data matches its stored digest.

    Data that cannot be read or decoded (a torn or truncated chunk file), a missing digest or a
    different sha256 all give False. Stores without digests pass on the marker alone.

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    index : int
        Chunk index.
    chunk_size, n_samples : int
        The store's chunk size and number of samples.
    names : tuple of str, optional
        The data arrays in digest order (default: read from the store's attributes).

    Returns
    -------
    bool
    """
    try:
        group = open_group(path, storage_options, "r")
        if group[MARKERS][index] != 1:
            return False
        if DIGESTS not in group:
            return True
        names = names or ChunkStore.data_names_of(dict(group.attrs).get(ATTR) or {})
        want = np.asarray(group[DIGESTS][index], dtype=np.uint8).tobytes()
        start = index * chunk_size
        rows = slice(start, min(start + chunk_size, n_samples))
        outputs = {name: np.asarray(group[name][rows]) for name in names}
    except Exception:  # unreadable: torn by a crash or corrupted
        return False
    return want == outputs_digest(outputs, names)


def stored_input_digest(path: str, storage_options: dict[str, Any] | None, index: int) -> bytes | None:
    """The recorded input digest of chunk ``index`` (None if the store has none for it).

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    index : int
        Chunk index.

    Returns
    -------
    bytes or None
    """
    try:
        group = open_group(path, storage_options, "r")
        if INPUT_DIGESTS not in group:
            return None
        raw = np.asarray(group[INPUT_DIGESTS][index], dtype=np.uint8).tobytes()
    except Exception:  # unreadable: treated as unknown, the data digest check still applies
        return None
    return None if raw == bytes(32) else raw


def write_coord(group: zarr.Group, name: str, values: np.ndarray, dim: str) -> None:
    """A 1-D coordinate array along ``dim`` (strings as Zarr v3 strings), every chunk stored.

    Parameters
    ----------
    group : zarr.Group
        Where to create it.
    name : str
        The array's name.
    values : numpy.ndarray
        1-D values.
    dim : str
        Its dimension name.
    """
    if values.dtype.kind in "OUT":
        values, dtype = values.astype(str), str
    else:
        dtype = values.dtype
    arr = group.create_array(name, shape=values.shape, dtype=dtype, dimension_names=(dim,), config=WRITE_ALL)
    arr[:] = values


# ------------------------------------------------------------------------------------- input identity
IDENTITY_KEYS = ("location", "variable", "shape", "dtype")


def compare_identity(stored: dict[str, Any] | None, current: dict[str, Any], display: str,
                     what: str = "features", action: str = "resume",
                     keys: tuple[str, ...] = IDENTITY_KEYS) -> None:
    """Refuse ``action`` on the store ``display`` (of ``what``) when ``current`` is not the input it was
    made from.

    Location, variable, shape and dtype are compared; a store that recorded no identity passes.

    Parameters
    ----------
    stored : dict or None
        The identity the store recorded.
    current : dict
        The identity of the input given now.
    display : str
        The store, for messages.
    what : str, default "features"
        What the store holds, for messages.
    action : str, default "resume"
        What is refused, for messages.
    keys : tuple of str, default IDENTITY_KEYS
        The entries compared.

    Raises
    ------
    IdentityMismatchError
        One of the compared entries differs.
    """
    if not stored:  # stores that recorded no identity
        return
    for key in keys:
        if key in stored and stored[key] != current.get(key):
            raise IdentityMismatchError(
                f"the {what} in {display} were made from {_describe_input(stored)} but the input given is "
                f"{_describe_input(current)} ({key} differs); {action} needs the same input: pass it, or "
                "use overwrite=True / --overwrite to start over")


def _describe_input(ident: dict[str, Any]) -> str:
    var = f" variable {ident['variable']!r}" if ident.get("variable") else ""
    return f"{ident.get('location')}{var} {tuple(ident.get('shape') or ())} {ident.get('dtype')}"
