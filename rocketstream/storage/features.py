"""The features store: a Zarr group with a (sample, feature) float32 array, per-chunk done markers,
feature coordinates and the model in the attributes, laid out so ``xarray.open_zarr`` reads it.

Layout::

    OUT.zarr/                 attrs["rocketstream"] = {format, model, provenance, chunk_size, ...}
      features   (sample, feature) float32, chunks (chunk_size, n_features), fill NaN
      chunk_done (chunk,) uint8, one Zarr chunk per marker, set only after its block and digests
      chunk_sha256 (chunk, 32) uint8, sha256 of each written block (little-endian float32 bytes)
      input_sha256 (chunk, 32) uint8, sha256 of the input rows each block was computed from
      feature, dilation, kernel, ... (feature,) coordinates; sample, labels... (sample,) when known

The ``features`` chunks carry Zarr's crc32c codec, so every reader (zarr, xarray, dask) detects a
damaged chunk by itself; rocketstream's own readers (:class:`VerifiedFeatures`) also compare each
chunk with its sha256 the first time they read it, and name the chunk and the fix.

Write order per chunk: block, digests, marker. A crash can leave a block without marker (recomputed on
resume) or, on storage without atomic object writes, a torn block under a marker: resume re-hashes
marked blocks against their digests and recomputes the ones that fail. The attributes record the
input's identity (resolved location without credentials, variable, shape, chunking, dtype) and the
input digests record its rows: resume refuses another input (see ``graph.transform``).

Creation writes the format tag first and the full attributes last: a store whose creation was
interrupted is recognised as rocketstream's (``overwrite`` may replace it) but never as usable.

Audit log: with ``ROCKETSTREAM_AUDIT_LOG=/path/file`` in the environment of the processes that write
(workers included), every chunk write appends one JSON line ``{"event": "write", "chunk", "sha256",
"pid", "host", ...}`` (``"skip"`` when a re-run task finds its chunk already done). Lines are appended
with ``O_APPEND`` and are shorter than ``PIPE_BUF``, so lines from concurrent local processes never mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from ..errors import IdentityMismatchError, IntegrityError
from .locations import Location, redact, resolve
from .outputs import STORE_FORMATS, existing_output, remove_output
from .zarrstore import WRITE_ALL

STORE_FORMAT = STORE_FORMATS["features"]
STORE_FORMAT_VERSION = 3  # 2: per-chunk sha256 digests; 3: crc32c codec, input identity and digests
FEATURES = "features"
MARKERS = "chunk_done"
DIGESTS = "chunk_sha256"
INPUT_DIGESTS = "input_sha256"
ATTR = "rocketstream"
#: the features chunks' codecs: zstd, then a crc32c that Zarr checks on every read
FEATURE_COMPRESSORS = (ZstdCodec(level=0), Crc32cCodec())
#: markers read per request, so that reading them needs memory independent of the number of chunks
MARKER_BATCH = 4096
AUDIT_ENV = "ROCKETSTREAM_AUDIT_LOG"


class FeatureStore:
    """Handle on a features store; cheap to open, safe to use from many processes at once."""

    def __init__(self, path: str | os.PathLike | Location, group: zarr.Group,
                 storage_options: dict[str, Any] | None = None, writing: bool = True) -> None:
        self.location = resolve(path)
        self.path = self.location.target  # absolute, so tasks on any worker open the same store
        self.display = self.location.display
        self.group = group
        self.storage_options = storage_options
        meta = dict(group.attrs).get(ATTR)
        fix = ("choose another output or pass overwrite=True / --overwrite to replace it" if writing else
               "give a store made by `rocketstream transform` / transform_to_zarr")
        if isinstance(meta, dict) and meta.get("format") == STORE_FORMATS["predictions"]:
            raise ValueError(f"{self.display} is a rocketstream predictions store, not a features store; "
                             + fix)
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            raise ValueError(f"{self.display} is not a rocketstream features store (no {ATTR!r} attributes); "
                             + fix)
        if FEATURES not in group or MARKERS not in group or "n_samples" not in meta:
            raise ValueError(f"features store {self.display} is incomplete (its creation was interrupted); "
                             "rerun the transform with overwrite=True / --overwrite")
        self.meta: dict[str, Any] = meta

    # -- opening and creating -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | Location, mode: str = "r",
             storage_options: dict[str, Any] | None = None) -> FeatureStore:
        """Open an existing store (``mode`` "r" or "r+")."""
        loc = resolve(path)
        if not loc.url and not os.path.isdir(loc.target):
            raise FileNotFoundError(f"no features store at {loc.display}")
        try:
            group = _open(loc.target, storage_options, mode)
        except (FileNotFoundError, KeyError):
            raise FileNotFoundError(f"no features store at {loc.display}") from None
        except Exception as exc:
            raise ValueError(f"{loc.display} is not a Zarr group ({type(exc).__name__}); expected a "
                             "rocketstream features store") from None
        return cls(loc, group, storage_options, writing=mode != "r")

    @classmethod
    def create(
        cls,
        path: str | os.PathLike | Location,
        *,
        n_samples: int,
        n_features: int,
        chunk_size: int,
        meta: dict[str, Any],
        feature_coords: dict[str, np.ndarray],
        sample_coords: dict[str, np.ndarray] | None = None,
        overwrite: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> FeatureStore:
        """Create an empty store; refuses to replace anything unless ``overwrite``, and then only a
        features store (see :mod:`rocketstream.storage.outputs`)."""
        loc = resolve(path)
        if existing_output(loc, "features", storage_options):
            if not overwrite:
                raise FileExistsError(f"output {loc.display} already exists; pass overwrite=True / "
                                      "--overwrite to replace it, or resume=True / --resume to finish it")
            remove_output(loc, "features", storage_options)
        n_chunks = -(-n_samples // chunk_size)
        meta = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION,
                "n_samples": int(n_samples), "n_features": int(n_features),
                "chunk_size": int(chunk_size), "n_chunks": int(n_chunks), **meta}
        group = zarr.open_group(loc.target, mode="w-", zarr_format=3,
                                storage_options=storage_options if loc.url else None)
        group.attrs[ATTR] = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION}  # first
        coord_names = [*feature_coords, *(sample_coords or {})]
        for name, values in feature_coords.items():
            _write_coord(group, name, np.asarray(values), "feature")
        for name, values in (sample_coords or {}).items():
            _write_coord(group, name, np.asarray(values), "sample")
        group.create_array(MARKERS, shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0,
                           compressors=None, dimension_names=("chunk",))
        for name in (DIGESTS, INPUT_DIGESTS):
            group.create_array(name, shape=(n_chunks, 32), chunks=(1, 32), dtype="uint8", fill_value=0,
                               compressors=None, dimension_names=("chunk", "sha256_byte"))
        group.create_array(
            FEATURES, shape=(n_samples, n_features), chunks=(chunk_size, n_features), dtype="float32",
            fill_value=np.nan, dimension_names=("sample", "feature"), compressors=FEATURE_COMPRESSORS,
            attributes={"coordinates": " ".join(c for c in coord_names if c not in ("feature", "sample"))},
        )
        group.attrs[ATTR] = meta  # last: a store without it is refused as half-created
        return cls(loc, group, storage_options)

    # -- layout ---------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.meta["n_samples"])

    @property
    def n_features(self) -> int:
        return int(self.meta["n_features"])

    @property
    def chunk_size(self) -> int:
        return int(self.meta["chunk_size"])

    @property
    def n_chunks(self) -> int:
        return int(self.meta["n_chunks"])

    @property
    def features(self) -> zarr.Array:
        return self.group[FEATURES]

    def bounds(self, i: int) -> tuple[int, int]:
        """Sample range ``[start, stop)`` of chunk ``i``."""
        start = i * self.chunk_size
        return start, min(start + self.chunk_size, self.n_samples)

    @property
    def input_identity(self) -> dict[str, Any] | None:
        """What the features were computed from (None for stores older than format 3)."""
        return self.meta.get("input")

    @property
    def has_input_digests(self) -> bool:
        return INPUT_DIGESTS in self.group

    def model_fingerprint(self) -> str | None:
        """The fingerprint of the model whose features the store holds."""
        from ..core.serialization import fingerprint_dict

        model = self.meta.get("model")
        return fingerprint_dict(model) if isinstance(model, dict) and model else None

    def verified(self, allow_incomplete: bool = False) -> VerifiedFeatures:
        """The features as a read-only array that verifies each chunk it reads (with
        ``allow_incomplete``, chunks not yet written read as NaN instead of raising)."""
        return VerifiedFeatures(self, allow_incomplete)

    # -- markers ---------------------------------------------------------------------------------
    def done(self) -> np.ndarray:
        """Boolean (n_chunks,) array: which chunks are marked fully written (read in batches)."""
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
        return bool(self.done().all())

    @property
    def has_digests(self) -> bool:
        """False for stores written before per-chunk digests (format 1): they cannot be verified."""
        return DIGESTS in self.group

    def verify_chunk(self, index: int) -> bool:
        """True if chunk ``index`` is marked done and its block reads back with its stored sha256."""
        return check_chunk(self.path, self.storage_options, index, self.chunk_size, self.n_samples)

    def reset(self, indices: list[int]) -> None:
        """Clear the done markers (and digests) of ``indices``, so that resume recomputes them."""
        for i in indices:
            self.group[MARKERS][i] = 0
            for name in (DIGESTS, INPUT_DIGESTS):
                if name in self.group:
                    self.group[name][i] = 0


def block_digest(block: np.ndarray) -> bytes:
    """sha256 of a feature block as little-endian float32 bytes (what the store holds)."""
    return hashlib.sha256(np.ascontiguousarray(block, dtype="<f4").tobytes()).digest()


def input_digest(block: np.ndarray, lengths: np.ndarray | None = None) -> bytes:
    """sha256 of the input rows a block is computed from: their float32 values (what the transform
    sees) and, for unequal lengths, each series' length."""
    h = hashlib.sha256(np.ascontiguousarray(block, dtype="<f4").tobytes())
    if lengths is not None:
        h.update(np.ascontiguousarray(lengths, dtype="<i8").tobytes())
    return h.digest()


def _open(path: str, storage_options: dict[str, Any] | None, mode: str = "r+") -> zarr.Group:
    return zarr.open_group(path, mode=mode, storage_options=storage_options if "://" in path else None)


def audit(event: str, path: str, index: int, **fields: Any) -> None:
    """Append one line to the audit log named by ``$ROCKETSTREAM_AUDIT_LOG`` (if set)."""
    target = os.environ.get(AUDIT_ENV)
    if not target:
        return
    line = json.dumps({"event": event, "store": redact(str(path)), "chunk": int(index), "pid": os.getpid(),
                       "host": socket.gethostname(), "time": time.time(), **fields}) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def chunk_done(path: str, storage_options: dict[str, Any] | None, index: int) -> bool:
    """Whether chunk ``index`` is marked done (an unreadable marker counts as not done)."""
    try:
        return bool(_open(path, storage_options)[MARKERS][index] == 1)
    except Exception:
        return False


def write_chunk(path: str, storage_options: dict[str, Any] | None, index: int, start: int,
                block: np.ndarray, source_digest: bytes | None = None) -> None:
    """Write one feature block at rows ``start:start+len(block)``, then its digest and the digest of
    the input rows it came from, then its marker."""
    group = _open(path, storage_options)
    group[FEATURES].with_config(WRITE_ALL)[start : start + len(block)] = block
    digest = block_digest(block)
    if DIGESTS in group:
        group[DIGESTS][index] = np.frombuffer(digest, dtype=np.uint8)
    if source_digest is not None and INPUT_DIGESTS in group:
        group[INPUT_DIGESTS][index] = np.frombuffer(source_digest, dtype=np.uint8)
    # logged before the marker: a process killed in between leaves an unmarked chunk (rewritten
    # later, a second identical write), never a marked chunk with no write on record
    audit("write", path, index, start=int(start), rows=len(block), sha256=digest.hex())
    group[MARKERS][index] = 1


def check_chunk(path: str, storage_options: dict[str, Any] | None, index: int, chunk_size: int,
                n_samples: int) -> bool:
    """True if chunk ``index`` is marked done and its block matches its stored digest.

    A block that cannot be read or decoded (a torn or truncated chunk file), a missing digest or a
    different sha256 all give False. Stores without digests (format 1) pass on the marker alone.
    """
    try:
        group = _open(path, storage_options, "r")
        if group[MARKERS][index] != 1:
            return False
        if DIGESTS not in group:
            return True
        want = np.asarray(group[DIGESTS][index], dtype=np.uint8).tobytes()
        start = index * chunk_size
        block = group[FEATURES][start : min(start + chunk_size, n_samples)]
    except Exception:  # unreadable: torn by a crash or corrupted
        return False
    return want == block_digest(block)


def _write_coord(group: zarr.Group, name: str, values: np.ndarray, dim: str) -> None:
    if values.dtype.kind in "OU":
        values, dtype = values.astype(str), str
    else:
        dtype = values.dtype
    arr = group.create_array(name, shape=values.shape, dtype=dtype, dimension_names=(dim,), config=WRITE_ALL)
    arr[:] = values




def stored_input_digest(path: str, storage_options: dict[str, Any] | None, index: int) -> bytes | None:
    """The recorded input digest of chunk ``index`` (None if the store has none for it)."""
    try:
        group = _open(path, storage_options, "r")
        if INPUT_DIGESTS not in group:
            return None
        raw = np.asarray(group[INPUT_DIGESTS][index], dtype=np.uint8).tobytes()
    except Exception:  # unreadable: treated as unknown, the feature digest check still applies
        return None
    return None if raw == bytes(32) else raw


# ------------------------------------------------------------------------------------- input identity
IDENTITY_KEYS = ("location", "variable", "shape", "dtype")


def compare_identity(stored: dict[str, Any] | None, current: dict[str, Any], display: str,
                     action: str = "resume") -> None:
    """Refuse ``action`` on the store ``display`` when ``current`` is not the input it was made from."""
    if not stored:  # stores older than format 3 recorded no identity
        return
    for key in IDENTITY_KEYS:
        if key in stored and stored[key] != current.get(key):
            raise IdentityMismatchError(
                f"the features in {display} were made from {_describe_input(stored)} but the input given is "
                f"{_describe_input(current)} ({key} differs); {action} needs the same input: pass it, or "
                "use overwrite=True / --overwrite to start over")


def _describe_input(ident: dict[str, Any]) -> str:
    var = f" variable {ident['variable']!r}" if ident.get("variable") else ""
    return f"{ident.get('location')}{var} {tuple(ident.get('shape') or ())} {ident.get('dtype')}"


# --------------------------------------------------------------------------------- verified reading
class VerifiedFeatures:
    """The ``features`` of a store as a read-only 2-D array that verifies what it reads.

    The first read touching a chunk reads the whole chunk and checks its done marker and its sha256
    (and, through the codec, its crc32c); later reads of that chunk rely on the crc32c, which Zarr
    checks on every read. Any failure is an :class:`~rocketstream.errors.IntegrityError` naming the
    chunk, its samples and the fix. Supports ``shape``, ``dtype``, ``ndim``, ``chunks`` and
    ``__getitem__`` with a row slice or index (and any column selection), so it can back a Dask array.
    """

    def __init__(self, store: FeatureStore, allow_incomplete: bool = False) -> None:
        self.allow_incomplete = allow_incomplete
        self.path, self.display, self.storage_options = store.path, store.display, store.storage_options
        self.chunk_size, self.n_chunks = store.chunk_size, store.n_chunks
        self.shape = (store.n_samples, store.n_features)
        self.dtype = np.dtype("float32")
        self.ndim = 2
        self.chunks = (self.chunk_size, store.n_features)
        self.model_fingerprint = store.model_fingerprint()
        self.source = (store.meta.get("provenance") or {}).get("source")
        self._verified: set[int] = set()
        self._group: zarr.Group | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None}

    def __len__(self) -> int:
        return self.shape[0]

    def _arrays(self) -> zarr.Group:
        if self._group is None:
            self._group = _open(self.path, self.storage_options, "r")
        return self._group

    def _fail(self, index: int, problem: str) -> IntegrityError:
        start, stop = index * self.chunk_size, min((index + 1) * self.chunk_size, self.shape[0])
        src = f" {self.source}" if self.source else " INPUT"
        return IntegrityError(
            f"features store {self.display}: chunk {index} (samples {start}-{stop - 1}) {problem}; recompute "
            f"it with `rocketstream transform{src} --model MODEL.json --output {self.display} --resume` "
            "(the same input and model)")

    def _read(self, rows: slice, cols: Any, index: int) -> np.ndarray:
        try:
            return np.asarray(self._arrays()[FEATURES][rows, cols], dtype=np.float32)
        except IntegrityError:
            raise
        except Exception as exc:  # a checksum, decompression or truncation error from the codecs
            raise self._fail(index, f"cannot be read ({type(exc).__name__}: {exc}); it is damaged") from exc

    def _verify(self, index: int) -> np.ndarray:
        """Read chunk ``index`` whole and check its marker and sha256."""
        group = self._arrays()
        start, stop = index * self.chunk_size, min((index + 1) * self.chunk_size, self.shape[0])
        try:
            marked = int(group[MARKERS][index]) == 1
        except Exception:  # a torn marker
            marked = False
        if not marked:
            if self.allow_incomplete:
                return np.full((stop - start, self.shape[1]), np.nan, dtype=np.float32)
            raise self._fail(index, "is not written (the transform did not finish it)")
        block = self._read(slice(start, stop), slice(None), index)
        if DIGESTS in group:
            want = np.asarray(group[DIGESTS][index], dtype=np.uint8).tobytes()
            if want != block_digest(block):
                raise self._fail(index, "does not match its sha256 (the chunk was altered or corrupted)")
        self._verified.add(index)
        return block

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            key = tuple(k for k in key if k is not Ellipsis)
        rows = key[0] if key else slice(None)
        cols = key[1] if len(key) > 1 else slice(None)
        if len(key) > 2:
            raise IndexError(f"too many indices for a 2-D features array: {key}")
        if isinstance(rows, (int, np.integer)):
            row = int(rows) % self.shape[0] if -self.shape[0] <= int(rows) < self.shape[0] else None
            if row is None:
                raise IndexError(f"row {rows} is out of range for {self.shape[0]} samples")
            return self[slice(row, row + 1), cols][0]
        if not isinstance(rows, slice):
            raise TypeError("rows must be selected with a slice or an integer")
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            return self[slice(min(start, stop), max(start, stop)), cols][slice(None, None, step)]
        parts = []
        for index in range(start // self.chunk_size, -(-stop // self.chunk_size)) if stop > start else ():
            lo, hi = max(start, index * self.chunk_size), min(stop, (index + 1) * self.chunk_size)
            if index in self._verified:
                parts.append(self._read(slice(lo, hi), cols, index))
            else:
                block = self._verify(index)
                off = index * self.chunk_size
                parts.append(block[lo - off : hi - off][:, cols])
        if not parts:
            return np.empty((0, self.shape[1]), dtype=np.float32)[:, cols]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def to_dask(self) -> Any:
        """A Dask array over this reader, one task per store chunk."""
        import dask.array as da

        return da.from_array(self, chunks=self.chunks, asarray=True, lock=False,
                             name=f"rocketstream-features-{hashlib.sha1(self.path.encode()).hexdigest()[:16]}",
                             meta=np.empty((0, 0), dtype=np.float32))


def verified_features_of(array: Any) -> VerifiedFeatures | None:
    """A :class:`VerifiedFeatures` for a raw ``zarr.Array`` that is the ``features`` of a features
    store (so reading it verifies too), else None."""
    if not isinstance(array, zarr.Array) or array.path.rsplit("/", 1)[-1] != FEATURES:
        return None
    parent = array.path.rsplit("/", 1)[0] if "/" in array.path else ""
    try:
        group = zarr.open_group(store=array.store, path=parent, mode="r")
        meta = dict(group.attrs).get(ATTR)
    except Exception:
        return None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        return None
    root = getattr(array.store, "root", None)
    if root is None:
        return None
    where = os.path.join(str(root), parent) if parent else str(root)
    try:
        return FeatureStore(where, group).verified()
    except ValueError:
        return None
