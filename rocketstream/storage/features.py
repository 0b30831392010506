"""The features store: a Zarr group with a (sample, feature) float32 array, per-chunk done markers,
feature coordinates and the model in the attributes, laid out so ``xarray.open_zarr`` reads it.

Layout::

    OUT.zarr/                 attrs["rocketstream"] = {format, model, provenance, chunk_size, ...}
      features   (sample, feature) float32, chunks (chunk_size, n_features), fill NaN
      chunk_done (chunk,) uint8, one Zarr chunk per marker, set only after its block is written
      feature, dilation, kernel, ... (feature,) coordinates; sample, labels... (sample,) when known
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .zarrstore import _local_nonempty, _store_arg, is_url, store_exists

STORE_FORMAT = "rocketstream.features"
STORE_FORMAT_VERSION = 1
FEATURES = "features"
MARKERS = "chunk_done"
ATTR = "rocketstream"


class FeatureStore:
    """Handle on a features store; cheap to open, safe to use from many processes at once."""

    def __init__(self, path: str | os.PathLike, group: zarr.Group,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.path = str(path)
        self.group = group
        self.storage_options = storage_options
        meta = dict(group.attrs).get(ATTR)
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            raise ValueError(f"{self.path} is not a rocketstream features store (no {ATTR!r} attributes); "
                             "choose another output or pass overwrite=True / --overwrite to replace it")
        if FEATURES not in group or MARKERS not in group:
            raise ValueError(f"features store {self.path} is incomplete (its creation was interrupted); "
                             "rerun with overwrite=True / --overwrite")
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
        return cls(path, group, storage_options)

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

    # -- markers --------------------------------------------------------------------------------
    def done(self) -> np.ndarray:
        """Boolean (n_chunks,) array: which chunks are fully written."""
        markers = self.group[MARKERS]
        try:
            return np.asarray(markers[:]) == 1
        except Exception:  # a marker torn by a crash: read one by one, unreadable means not done
            out = np.zeros(self.n_chunks, dtype=bool)
            for i in range(self.n_chunks):
                try:
                    out[i] = markers[i] == 1
                except Exception:
                    out[i] = False
            return out

    def is_complete(self) -> bool:
        return bool(self.done().all())


def write_chunk(path: str, storage_options: dict[str, Any] | None, index: int, start: int,
                block: np.ndarray) -> None:
    """Write one feature block at rows ``start:start+len(block)``, then set its done marker."""
    group = zarr.open_group(_store_arg(path), mode="r+",
                            storage_options=storage_options if is_url(path) else None)
    group[FEATURES][start : start + len(block)] = block
    group[MARKERS][index] = 1


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
