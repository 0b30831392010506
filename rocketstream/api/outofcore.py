"""Out-of-core MiniRocket, gathered: fit from the drawn rows of a large array, transform chunk by chunk
into a Zarr features store (resumable, bitwise identical on any scheduler), and read it back.

The verbs live in modules named for what they hold (:mod:`.inputs`, :mod:`.fit`, :mod:`.transform`,
:mod:`.features`); this module re-exports them under one name.
"""

from __future__ import annotations

from ..storage.features import ATTR, MARKERS
from .features import features_info, load_store_model, open_features, verify_store
from .fit import fit
from .inputs import DIMS, open_source, resolve_lengths
from .transform import TransformJob, chunk_rows, run_transform, task_bytes, transform_to_zarr

__all__ = ["ATTR", "DIMS", "MARKERS", "TransformJob", "chunk_rows", "features_info", "fit",
           "load_store_model", "open_features", "open_source", "resolve_lengths", "run_transform",
           "task_bytes", "transform_to_zarr", "verify_store"]
