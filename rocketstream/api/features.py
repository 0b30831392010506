"""Reading a features store: its model, the features as a verified lazy xarray array, a full check
of every chunk, and a summary (what ``rocketstream info`` prints)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..core.parameters import MiniRocketParameters
from ..core.serialization import from_dict
from ..errors import StoreError
from ..graph.runner import damaged_chunks
from ..storage.features import FEATURES, FeatureStore
from ..storage.zarrstore import dim_arrays


def load_store_model(path: str | os.PathLike, storage_options: dict[str, Any] | None = None
                     ) -> MiniRocketParameters:
    """The model stored in a features store's attributes.

    Parameters
    ----------
    path : str or os.PathLike
        The features store.
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    MiniRocketParameters
        The model whose features the store holds.

    Raises
    ------
    FileNotFoundError
        No store at ``path``.
    StoreError
        Not a features store, or an unfinished one.
    ModelFileError
        The recorded model is damaged.
    """
    return from_dict(FeatureStore.open(path, storage_options=storage_options).meta["model"])


def stored_coordinates(store: FeatureStore) -> dict[str, tuple[str, np.ndarray]]:
    """Every 1-D array of a features store along ``sample`` or ``feature`` (the feature table, and the
    labels, sample index, lengths... of the input), read whole as NumPy.

    Parameters
    ----------
    store : FeatureStore
        The store.

    Returns
    -------
    dict
        ``name -> (dim, values)``, strings as ``<U`` (see :func:`~rocketstream.storage.zarrstore.dim_arrays`).

    Raises
    ------
    MissingChunkError
        A chunk of one of those arrays is absent from the store.
    """
    sizes = {"sample": store.n_samples, "feature": store.n_features}
    return dim_arrays(store.group, sizes, f"the features store {store.display}", skip=(FEATURES,))


def open_features(path: str | os.PathLike, *, allow_incomplete: bool = False,
                  storage_options: dict[str, Any] | None = None) -> Any:
    """Open a features store as a lazy ``xarray.DataArray`` (sample, feature) with NumPy coordinates.

    The data is read through :class:`~rocketstream.storage.features.VerifiedFeatures`: each chunk is
    checked against its sha256 the first time it is computed, and a damaged chunk raises
    :class:`~rocketstream.errors.IntegrityError` naming it. The coordinates are small and read at once
    as NumPy arrays: along ``feature`` the feature table (``feature``, ``dilation``, ``kernel``...),
    along ``sample`` whatever per-sample arrays the store holds (``sample``, ``label``, ``length``...),
    strings as fixed-width ``<U``; so ``feats.groupby("label").mean()`` and
    ``feats.where(feats.label == x, drop=True)`` work without computing anything first. The model
    (JSON) and provenance are in ``attrs`` (``rocketstream_model``...). Opening it registers the
    ``.rocket`` accessor (``feats.rocket.model``).

    Parameters
    ----------
    path : str or os.PathLike
        The features store.
    allow_incomplete : bool, default False
        Open a store whose chunks are not all written (their rows read as NaN).
    storage_options : dict, optional
        fsspec options for a URL.

    Returns
    -------
    xarray.DataArray
        ``features``: lazy float32 (sample, feature), with the stored coordinates as NumPy arrays.

    Raises
    ------
    FileNotFoundError
        No store at ``path``.
    StoreError
        Not a features store, or some chunks are not written yet (without ``allow_incomplete``).
    MissingChunkError
        A chunk of a coordinate array is absent.
    IntegrityError
        When computed: a chunk fails its check.

    Examples
    --------
    >>> from rocketstream import open_features
    >>> feats = open_features("features.zarr")
    >>> feats.dims, feats.shape
    (('sample', 'feature'), (1000, 924))
    >>> feats.groupby("label").mean().dims
    ('label', 'feature')
    """
    import xarray as xr

    from . import xarray as _accessor  # noqa: F401  (registers .rocket)

    store = FeatureStore.open(path, storage_options=storage_options)
    done = store.done()
    if not done.all() and not allow_incomplete:
        raise StoreError(f"features store {store.display} is incomplete ({int(done.sum())} of {done.size} "
                         "chunks written); finish it with resume=True / --resume, or pass "
                         "allow_incomplete=True")
    attrs = {k: v for k, v in dict(store.features.attrs).items()
             if k != "coordinates" and not k.startswith("_")}
    attrs["rocketstream_model"] = json.dumps(store.meta["model"])
    prov = store.meta.get("provenance", {})
    attrs.update({k if k.startswith("rocketstream") else f"rocketstream_{k}": v
                  for k, v in prov.items() if v is not None})
    data = store.verified(allow_incomplete=allow_incomplete).to_dask()
    return xr.DataArray(data, dims=("sample", "feature"), coords=stored_coordinates(store), attrs=attrs,
                        name=FEATURES)


def verify_store(store: FeatureStore, scheduler: Any = "threads") -> list[int]:
    """Chunks of ``store`` marked done whose block fails its sha256 or cannot be read (every block is
    read once).

    Parameters
    ----------
    store : FeatureStore
        The store to check.
    scheduler : Any, default "threads"
        Where the checks run.

    Returns
    -------
    list of int
        The damaged chunks.
    """
    return damaged_chunks(store, scheduler)[0]


def features_info(path: str | os.PathLike, storage_options: dict[str, Any] | None = None,
                  verify: bool = True) -> dict[str, Any]:
    """A summary of a features store: shape, chunks done, model and provenance.

    With ``verify`` every block marked done is read and checked against its sha256: ``complete`` is
    true only if every chunk is written and verifies, and ``damaged_chunks`` lists those that do not.

    Parameters
    ----------
    path, storage_options
        As for :func:`load_store_model`.
    verify : bool, default True
        Read and check every block marked done.

    Returns
    -------
    dict
        ``kind``, ``path``, ``shape``, ``chunk_size``, ``chunks_done``, ``complete``, ``verified``, the
        model's ``n_channels``, ``length``, ``seed`` and ``model_sha256``, the provenance, the
        ``input`` identity and the ``history`` of the rows added (``{time, added, n_samples}`` per
        creation or append); ``damaged_chunks`` and ``fix`` when some chunk fails; ``growth`` when an
        append was interrupted.

    Raises
    ------
    FileNotFoundError, StoreError, ModelFileError
        As for :func:`load_store_model`.

    Examples
    --------
    >>> from rocketstream.api.outofcore import features_info
    >>> info = features_info("features.zarr")
    >>> info["shape"], info["chunks_done"], info["complete"]
    ([1000, 924], '4/4', True)
    """
    store = FeatureStore.open(path, storage_options=storage_options, resizing_ok=True)
    params = from_dict(store.meta["model"])
    done = store.done()
    bad = verify_store(store) if verify and store.has_digests else []
    info = {
        "kind": "features store",
        "path": store.display,
        "shape": [store.n_samples, store.n_features],
        "chunk_size": store.chunk_size,
        "chunks_done": f"{int(done.sum())}/{done.size}",
        "complete": bool(done.all()) and not bad and not store.resizing,
        "verified": (f"{int(done.sum()) - len(bad)}/{int(done.sum())} written chunks match their sha256"
                     if verify and store.has_digests else "not verified"),
    }
    if bad:
        info["damaged_chunks"] = bad[:20]
        info["fix"] = "rerun the transform with --resume (the same input and model) to recompute them"
    info.update({
        "n_channels": params.n_channels,
        "length": params.length,
        "seed": params.seed,
        "model_sha256": store.meta["model"].get("sha256"),
        **{k: v for k, v in store.meta.get("provenance", {}).items() if k != "seed"},
    })
    if store.input_identity:
        info["input"] = store.input_identity
    info["history"] = store.history
    if store.resizing:
        r = store.resizing
        info["growth"] = (f"interrupted while growing from {r.get('from')} to {r.get('to')} samples (started "
                          f"{r.get('started')}); finish it with `rocketstream transform ... --append`")
    return info
