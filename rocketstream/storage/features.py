"""The features store: a Zarr group with a (sample, feature) float32 array, per-chunk done markers,
feature coordinates and the model in the attributes, laid out so ``xarray.open_zarr`` reads it.

Layout::

    OUT.zarr/                 attrs["rocketstream"] = {format, model, provenance, chunk_size, ...}
      features   (sample, feature) float32, chunks (chunk_size, n_features), fill NaN
      chunk_done (chunk,) uint8, one Zarr chunk per marker, set only after its block and digest
      chunk_sha256 (chunk, 32) uint8, sha256 of each written block (little-endian float32 bytes)
      feature, dilation, kernel, ... (feature,) coordinates; sample, labels... (sample,) when known

Write order per chunk: block, digest, marker. A crash can leave a block without marker (recomputed on
resume) or, on storage without atomic object writes, a torn block under a marker: :meth:`verify`
re-hashes marked blocks against their digests, and resume recomputes the ones that fail.

Audit log: with ``ROCKETSTREAM_AUDIT_LOG=/path/file`` in the environment of the processes that write
(workers included), every chunk write appends one JSON line ``{"event": "write", "chunk", "sha256",
"pid", "host", ...}`` (``"skip"`` when a re-run task finds its chunk already done). Lines are appended
with ``O_APPEND`` and are shorter than ``PIPE_BUF``, so lines from concurrent local processes never mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .zarrstore import _local_nonempty, _store_arg, is_url, store_exists

STORE_FORMAT = "rocketstream.features"
STORE_FORMAT_VERSION = 2  # 2: per-chunk sha256 digests
FEATURES = "features"
MARKERS = "chunk_done"
DIGESTS = "chunk_sha256"
ATTR = "rocketstream"
#: markers read per request, so that reading them needs memory independent of the number of chunks
MARKER_BATCH = 4096
AUDIT_ENV = "ROCKETSTREAM_AUDIT_LOG"


class FeatureStore:
    """Handle on a features store; cheap to open, safe to use from many processes at once."""

    def __init__(self, path: str | os.PathLike, group: zarr.Group,
                 storage_options: dict[str, Any] | None = None, writing: bool = True) -> None:
        self.path = str(path)
        self.group = group
        self.storage_options = storage_options
        meta = dict(group.attrs).get(ATTR)
        fix = ("choose another output or pass overwrite=True / --overwrite to replace it" if writing else
               "give a store made by `rocketstream transform` / transform_to_zarr")
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            raise ValueError(f"{self.path} is not a rocketstream features store (no {ATTR!r} attributes); "
                             + fix)
        if FEATURES not in group or MARKERS not in group:
            raise ValueError(f"features store {self.path} is incomplete (its creation was interrupted); "
                             "rerun the transform with overwrite=True / --overwrite")
        self.meta: dict[str, Any] = meta

    # -- opening and creating -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r",
             storage_options: dict[str, Any] | None = None) -> FeatureStore:
        """Open an existing store (``mode`` "r" or "r+")."""
        try:
            group = zarr.open_group(_store_arg(path), mode=mode,
                                    storage_options=storage_options if is_url(path) else None)
        except (FileNotFoundError, KeyError):
            raise FileNotFoundError(f"no features store at {path}") from None
        except Exception as exc:
            raise ValueError(f"{path} is not a Zarr group ({exc}); expected a rocketstream "
                             "features store") from None
        return cls(path, group, storage_options, writing=mode != "r")

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
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
        """Create an empty store; refuses to replace anything unless ``overwrite`` (and never a
        non-Zarr directory)."""
        if store_exists(path, storage_options):
            if not overwrite:
                raise FileExistsError(f"output {path} already exists; pass overwrite=True / --overwrite to "
                                      "replace it, or resume=True / --resume to finish it")
            _remove(path, storage_options)
        n_chunks = -(-n_samples // chunk_size)
        meta = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION,
                "n_samples": int(n_samples), "n_features": int(n_features),
                "chunk_size": int(chunk_size), "n_chunks": int(n_chunks), **meta}
        group = zarr.open_group(_store_arg(path), mode="w-", zarr_format=3,
                                storage_options=storage_options if is_url(path) else None)
        coord_names = [*feature_coords, *(sample_coords or {})]
        for name, values in feature_coords.items():
            _write_coord(group, name, np.asarray(values), "feature")
        for name, values in (sample_coords or {}).items():
            _write_coord(group, name, np.asarray(values), "sample")
        group.create_array(MARKERS, shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0,
                           compressors=None, dimension_names=("chunk",))
        group.create_array(DIGESTS, shape=(n_chunks, 32), chunks=(1, 32), dtype="uint8", fill_value=0,
                           compressors=None, dimension_names=("chunk", "sha256_byte"))
        group.create_array(
            FEATURES, shape=(n_samples, n_features), chunks=(chunk_size, n_features), dtype="float32",
            fill_value=np.nan, dimension_names=("sample", "feature"),
            attributes={"coordinates": " ".join(c for c in coord_names if c not in ("feature", "sample"))},
        )
        group.attrs[ATTR] = meta  # last: a store without it is refused as half-created
        return cls(path, group, storage_options)

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
            if self.has_digests:
                self.group[DIGESTS][i] = 0


def block_digest(block: np.ndarray) -> bytes:
    """sha256 of a feature block as little-endian float32 bytes (what the store holds)."""
    return hashlib.sha256(np.ascontiguousarray(block, dtype="<f4").tobytes()).digest()


def _open(path: str, storage_options: dict[str, Any] | None) -> zarr.Group:
    return zarr.open_group(_store_arg(path), mode="r+",
                           storage_options=storage_options if is_url(path) else None)


def audit(event: str, path: str, index: int, **fields: Any) -> None:
    """Append one line to the audit log named by ``$ROCKETSTREAM_AUDIT_LOG`` (if set)."""
    target = os.environ.get(AUDIT_ENV)
    if not target:
        return
    line = json.dumps({"event": event, "store": str(path), "chunk": int(index), "pid": os.getpid(),
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
                block: np.ndarray) -> None:
    """Write one feature block at rows ``start:start+len(block)``, then its digest, then its marker."""
    group = _open(path, storage_options)
    group[FEATURES][start : start + len(block)] = block
    digest = block_digest(block)
    if DIGESTS in group:
        group[DIGESTS][index] = np.frombuffer(digest, dtype=np.uint8)
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
        group = zarr.open_group(_store_arg(path), mode="r",
                                storage_options=storage_options if is_url(path) else None)
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
        values = values.astype(str)
        arr = group.create_array(name, shape=values.shape, dtype=str, dimension_names=(dim,))
    else:
        arr = group.create_array(name, shape=values.shape, dtype=values.dtype, dimension_names=(dim,))
    arr[:] = values


def _remove(path: str | os.PathLike, storage_options: dict[str, Any] | None) -> None:
    """Delete an existing Zarr store (never a local directory that is not one)."""
    if not is_url(path):
        p = Path(path).expanduser()
        if p.is_file():
            raise FileExistsError(f"output {path} is a file, not a Zarr store; remove it yourself or choose "
                                  "another output path")
        if _local_nonempty(p) and not any((p / n).exists() for n in ("zarr.json", ".zgroup", ".zarray")):
            raise FileExistsError(f"output {path} is a directory that is not a Zarr store; refusing "
                                  "to delete it: choose another output path")
        shutil.rmtree(p)
        return
    zarr.open_group(str(path), mode="w", storage_options=storage_options)
