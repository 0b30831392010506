"""Consolidated metadata for the stores users open with ``xarray.open_zarr``.

``xarray.open_zarr(path)`` looks for consolidated metadata first and warns (RuntimeWarning) when a
store has none. The stores rocketstream finishes for xarray users (``ingest`` output, predictions)
therefore carry it, written once the store is complete: consolidated metadata is a snapshot of every
array's metadata, so it is written after the last array is created and rewritten by whatever changes
one. Writing it makes zarr 3 warn that consolidated metadata is not yet part of the Zarr v3
specification; that notice (and only it) is silenced while rocketstream writes it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import zarr

#: the start of zarr's notice when consolidated metadata is written to a Zarr v3 store
SPEC_NOTICE = "Consolidated metadata is currently not part"


@contextlib.contextmanager
def quiet_consolidation() -> Iterator[None]:
    """Silence zarr's notice that consolidated metadata is not in the Zarr v3 specification (only it).

    Yields
    ------
    None
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SPEC_NOTICE, category=UserWarning)
        yield


def consolidate(group: zarr.Group) -> zarr.Group:
    """Write the consolidated metadata of ``group`` (a store's root group), read fresh from the store.

    Parameters
    ----------
    group : zarr.Group
        The root group, open for writing.

    Returns
    -------
    zarr.Group
        The group, opened again with its consolidated metadata (an attribute written through the old
        handle would drop it).
    """
    with quiet_consolidation():
        return zarr.consolidate_metadata(group.store, path=group.path or None)


__all__ = ["SPEC_NOTICE", "consolidate", "quiet_consolidation"]
