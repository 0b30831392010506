"""The features store: a :class:`~rocketstream.storage.chunkstore.ChunkStore` holding a (sample, feature)
float32 array, feature coordinates and the model in the attributes, laid out so ``xarray.open_zarr``
reads it.

Layout (besides the markers and digests every chunk store has)::

    OUT.zarr/                 attrs["rocketstream"] = {format, model, input, provenance, chunk_size, ...}
      features   (sample, feature) float32, chunks (chunk_size, n_features), fill NaN; stored feature-major
                 (transpose codec), zstd, crc32c: plain zarr, xarray and dask read it
      feature, dilation, kernel, ... (feature,) coordinates; sample, labels... (sample,) when known

The ``features`` chunks carry Zarr's crc32c codec, so every reader (zarr, xarray, dask) detects a
damaged chunk by itself; rocketstream's own readers (:class:`VerifiedFeatures`) also compare each
chunk with its sha256 the first time they read it, and name the chunk and the fix.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, ClassVar

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, TransposeCodec, ZstdCodec

from ..errors import IntegrityError
from .chunkstore import (
    ATTR,
    AUDIT_ENV,
    DIGESTS,
    INPUT_DIGESTS,
    MARKER_BATCH,
    MARKERS,
    ChunkStore,
    block_digest,
    open_group,
)
from .chunkwriter import write_chunk as write_outputs
from .locations import Location
from .outputs import STORE_FORMATS

STORE_FORMAT = STORE_FORMATS["features"]
STORE_FORMAT_VERSION = 3  # 2: per-chunk sha256 digests; 3: crc32c codec, input identity and digests
FEATURES = "features"
#: the features chunks' codecs: feature-major order (a feature's values over the chunk's samples side by
#: side: the same few fractions k/n recur), zstd, then a crc32c that Zarr checks on every read
FEATURE_FILTERS = (TransposeCodec(order=(1, 0)),)
FEATURE_COMPRESSORS = (ZstdCodec(level=3), Crc32cCodec())


class FeatureStore(ChunkStore):
    """Handle on a features store; cheap to open, safe to use from many processes at once.

    Open one with :meth:`~ChunkStore.open` (``FeatureStore.open(path)``), make one with :meth:`create`;
    the constructor takes the arguments of :class:`~rocketstream.storage.chunkstore.ChunkStore`.
    """

    KIND: ClassVar[str] = "features"
    VERSION: ClassVar[int] = STORE_FORMAT_VERSION
    MAKER: ClassVar[str] = "rocketstream transform"

    @classmethod
    def data_names_of(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        """The data arrays: always ``("features",)``.

        Parameters
        ----------
        meta : dict
            The store's ``rocketstream`` attributes (unused).

        Returns
        -------
        tuple of str
        """
        return (FEATURES,)

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
        features store (see :mod:`rocketstream.storage.outputs`).

        Parameters
        ----------
        path : str, os.PathLike or Location
            Local path (in an existing directory) or fsspec URL.
        n_samples, n_features, chunk_size : int
            Shape of ``features`` and samples per chunk.
        meta : dict
            Attributes to record (model, input identity, provenance).
        feature_coords : dict of str to numpy.ndarray
            Coordinates along ``feature``.
        sample_coords : dict of str to numpy.ndarray, optional
            Coordinates along ``sample`` (labels...).
        overwrite : bool, default False
            Replace an existing features store.
        storage_options : dict, optional
            fsspec options for a URL.

        Returns
        -------
        FeatureStore

        Raises
        ------
        FileExistsError
            A features store is there and ``overwrite`` is false.
        UnsafeOutputError
            Something else is there (a file, a foreign directory or Zarr store, another kind of store).
        FileNotFoundError
            The parent directory does not exist.
        """
        coords = {**{k: ("feature", v) for k, v in feature_coords.items()},
                  **{k: ("sample", v) for k, v in (sample_coords or {}).items()}}
        extra = {"fill_value": np.nan, "filters": FEATURE_FILTERS, "compressors": FEATURE_COMPRESSORS,
                 "attributes": {"coordinates": " ".join(c for c in coords if c not in ("feature", "sample"))}}
        layout = {FEATURES: ((n_samples, n_features), (chunk_size, n_features), "float32",
                             ("sample", "feature"), extra)}
        return cls._create(path, n_samples=n_samples, chunk_size=chunk_size, layout=layout,
                           meta={"n_features": int(n_features), **meta}, coords=coords, overwrite=overwrite,
                           storage_options=storage_options)

    @property
    def n_features(self) -> int:
        """Number of features per sample."""
        return int(self.meta["n_features"])

    @property
    def features(self) -> zarr.Array:
        """The raw (sample, feature) float32 ``zarr.Array`` (not verified; see :meth:`verified`)."""
        return self.group[FEATURES]

    def model_fingerprint(self) -> str | None:
        """The fingerprint of the model whose features the store holds.

        Returns
        -------
        str or None
            None when the store records no model.
        """
        from ..core.serialization import fingerprint_dict

        model = self.meta.get("model")
        return fingerprint_dict(model) if isinstance(model, dict) and model else None

    def verified(self, allow_incomplete: bool = False) -> VerifiedFeatures:
        """The features as a read-only array that verifies each chunk it reads (with
        ``allow_incomplete``, chunks not yet written read as NaN instead of raising).

        Parameters
        ----------
        allow_incomplete : bool, default False
            Read unwritten chunks as NaN.

        Returns
        -------
        VerifiedFeatures
        """
        return VerifiedFeatures(self, allow_incomplete)


def write_chunk(path: str, storage_options: dict[str, Any] | None, index: int, start: int,
                block: np.ndarray, source_digest: bytes | None = None) -> None:
    """Write one feature block at rows ``start:start+len(block)``, then its digests, then its marker.

    Parameters
    ----------
    path : str
        The store's path or URL.
    storage_options : dict or None
        fsspec options.
    index : int
        Chunk index.
    start : int
        First sample of the chunk.
    block : numpy.ndarray
        float32 (rows, n_features).
    source_digest : bytes, optional
        Digest of the input rows (see :func:`~rocketstream.storage.chunkstore.input_digest`).
    """
    write_outputs(path, storage_options, index, start, {FEATURES: block}, source_digest)


class VerifiedFeatures:
    """The ``features`` of a store as a read-only 2-D array that verifies what it reads.

    The first read touching a chunk reads the whole chunk and checks its done marker and its sha256
    (and, through the codec, its crc32c); later reads of that chunk rely on the crc32c, which Zarr
    checks on every read. Any failure is an :class:`~rocketstream.errors.IntegrityError` naming the
    chunk, its samples and the fix. Supports ``shape``, ``dtype``, ``ndim``, ``chunks`` and
    ``__getitem__`` with a row slice or index (and any column selection), so it can back a Dask array.

    Parameters
    ----------
    store : FeatureStore
        The store to read.
    allow_incomplete : bool, default False
        Read chunks not yet written as NaN instead of raising.

    Attributes
    ----------
    model_fingerprint : str or None
        The fingerprint of the model that made the features.
    source : str or None
        The input the features were computed from, as recorded.
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
        self._opened: dict[str, zarr.Array] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    def __len__(self) -> int:
        return self.shape[0]

    def _arrays(self) -> dict[str, zarr.Array]:
        """The store's features, markers and digests arrays, opened once per process (each access
        through the group would read the array's metadata again)."""
        if self._opened is None:
            group = open_group(self.path, self.storage_options, "r")
            self._opened = {name: group[name] for name in (FEATURES, MARKERS, DIGESTS) if name in group}
        return self._opened

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
        arrays = self._arrays()
        start, stop = index * self.chunk_size, min((index + 1) * self.chunk_size, self.shape[0])
        try:
            marked = int(arrays[MARKERS][index]) == 1
        except Exception:  # a torn marker
            marked = False
        if not marked:
            if self.allow_incomplete:
                return np.full((stop - start, self.shape[1]), np.nan, dtype=np.float32)
            raise self._fail(index, "is not written (the transform did not finish it)")
        block = self._read(slice(start, stop), slice(None), index)
        if DIGESTS in arrays:
            want = np.asarray(arrays[DIGESTS][index], dtype=np.uint8).tobytes()
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
        """A Dask array over this reader, one task per store chunk.

        Returns
        -------
        dask.array.Array
            float32 (n_samples, n_features), chunked like the store.
        """
        import dask.array as da

        return da.from_array(self, chunks=self.chunks, asarray=True, lock=False,
                             name=f"rocketstream-features-{hashlib.sha1(self.path.encode()).hexdigest()[:16]}",
                             meta=np.empty((0, 0), dtype=np.float32))


def verified_features_of(array: Any) -> VerifiedFeatures | None:
    """A :class:`VerifiedFeatures` for a raw ``zarr.Array`` that is the ``features`` of a features
    store (so reading it verifies too), else None.

    Parameters
    ----------
    array : Any
        Anything; only a ``zarr.Array`` on a local store can qualify.

    Returns
    -------
    VerifiedFeatures or None
    """
    if not isinstance(array, zarr.Array) or array.path.rsplit("/", 1)[-1] != FEATURES:
        return None
    parent = array.path.rsplit("/", 1)[0] if "/" in array.path else ""
    try:
        group = zarr.open_group(store=array.store, path=parent, mode="r", use_consolidated=False)
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


__all__ = ["ATTR", "AUDIT_ENV", "DIGESTS", "FEATURES", "FEATURE_COMPRESSORS", "INPUT_DIGESTS", "MARKERS",
           "MARKER_BATCH", "STORE_FORMAT", "FeatureStore", "VerifiedFeatures", "block_digest",
           "verified_features_of", "write_chunk"]
