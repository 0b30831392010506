"""Which rows a head has learned from, so that an update folds in exactly the rows appended since.

A features store grows by appends: rows ``[0, n)`` keep their values and new rows follow them. A head
records the identity of the rows ``[0, n)`` it was trained on (a JSON dict, :func:`rows_identity`):

- ``n_rows``, ``n_features`` and ``model_fingerprint`` (the model that made the features, where known);
- ``labels_sha256``: the labels (or targets) of those rows;
- ``edges_sha256``: the first and last (up to) four rows, as float32 (any source);
- for a features store with chunk digests: ``chunk_size``, ``chunks_sha256`` (a sha256 over the stored
  sha256 digests of every whole chunk inside ``[0, n)``, read from the store's digest array, not from
  the rows) and ``tail_sha256`` (the rows of a last, partial chunk, which an append may rewrite);
  ``store`` names the store (for messages only: a copy of the same rows elsewhere is the same rows).

:func:`check_rows` compares such a record with a (grown) source, reading no row but the edges and the
partial tail chunk, and raises :class:`~rocketstream.errors.IdentityMismatchError` naming what differs.
For sources other than a features store (NumPy, Dask, xarray) only the edges, the labels and the shape
are compared.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from rocketstream.errors import IdentityMismatchError, InputError
from rocketstream.storage.chunkstore import DIGESTS, digest_bytes, open_group
from rocketstream.storage.features import VerifiedFeatures

from .loader import FeatureSource

#: rows hashed at each end of the folded range
EDGE_ROWS = 4


def labels_digest(labels: Any) -> str:
    """sha256 of labels or targets, independent of the integer / float / text width they come in.

    Parameters
    ----------
    labels : array-like
        Class labels or regression targets, one (row of) value(s) per sample.

    Returns
    -------
    str
        The hex digest (over the shape and the values).
    """
    a = np.asarray(labels)
    if a.dtype.kind in "OUST":
        body = digest_bytes(a)
    elif a.dtype.kind in "biu":
        body = np.ascontiguousarray(a, dtype="<i8").tobytes()
    else:
        body = np.ascontiguousarray(a, dtype="<f8").tobytes()
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(b"text" if a.dtype.kind in "OUST" else b"number")
    h.update(body)
    return h.hexdigest()


def _rows_digest(source: FeatureSource, start: int, stop: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(source.read(start, stop), dtype="<f4").tobytes()).hexdigest()


def rows_identity(source: FeatureSource, labels: Any, n_rows: int, model_fingerprint: str | None) -> dict:
    """The identity of rows ``[0, n_rows)`` of ``source`` and their labels (see the module docstring).

    Parameters
    ----------
    source : FeatureSource
        The features (at least ``n_rows`` rows).
    labels : array-like
        The labels of at least those rows (only the first ``n_rows`` are used).
    n_rows : int
        How many leading rows the record covers.
    model_fingerprint : str or None
        The model that made the features.

    Returns
    -------
    dict
        JSON-serialisable record.
    """
    n = int(n_rows)
    ident: dict[str, Any] = {
        "n_rows": n, "n_features": int(source.n_features), "model_fingerprint": model_fingerprint,
        "labels_sha256": labels_digest(np.asarray(labels)[:n]),
        "edges_sha256": hashlib.sha256(
            (_rows_digest(source, 0, min(EDGE_ROWS, n)) + _rows_digest(source, max(0, n - EDGE_ROWS), n))
            .encode()).hexdigest(),
    }
    data = source.data
    if isinstance(data, VerifiedFeatures):
        ident["store"] = data.display
        group = open_group(data.path, data.storage_options, "r")
        if DIGESTS in group:
            cs = int(data.chunk_size)
            whole = n // cs
            digests = np.asarray(group[DIGESTS][:whole], dtype=np.uint8) if whole else np.zeros((0, 32))
            ident["chunk_size"] = cs
            ident["chunks_sha256"] = hashlib.sha256(np.ascontiguousarray(digests, dtype=np.uint8)).hexdigest()
            ident["tail_sha256"] = _rows_digest(source, whole * cs, n) if n % cs else None
    return ident


def check_rows(recorded: dict, source: FeatureSource, labels: Any, model_fingerprint: str | None,
               what: str = "the head") -> None:
    """Refuse ``source`` unless its first ``recorded["n_rows"]`` rows are the rows ``recorded`` describes.

    Parameters
    ----------
    recorded : dict
        From :func:`rows_identity`, when the head was trained (or last updated).
    source : FeatureSource
        The grown features.
    labels : array-like
        The labels of every row of ``source``.
    model_fingerprint : str or None
        The model that made ``source``'s features, where known.
    what : str
        What the record belongs to, for messages.

    Raises
    ------
    InputError
        ``source`` has fewer rows than were folded in, or another number of features.
    IdentityMismatchError
        Another model, or rows / labels that differ from those folded in.
    """
    n = int(recorded["n_rows"])
    fix = ("an update folds in the rows appended to the same features store since; pass that store (and "
           "its labels), or train afresh with --overwrite / overwrite=True")
    if source.n_features != recorded["n_features"]:
        raise InputError(f"the features have {source.n_features} columns but {what} was trained on "
                         f"{recorded['n_features']}; {fix}")
    if source.n_samples < n:
        raise InputError(f"the features have {source.n_samples} rows but {what} has learned from {n} "
                         f"already; {fix}")
    made_by = recorded.get("model_fingerprint")
    if made_by and model_fingerprint and made_by != model_fingerprint:
        raise IdentityMismatchError(f"the features were made by model {model_fingerprint[:12]} but {what} "
                                    f"learned from features of model {made_by[:12]}; {fix}")
    now = rows_identity(source, labels, n, model_fingerprint)
    where = f" (recorded from {recorded['store']})" if recorded.get("store") else ""
    rows = f"rows 0-{n - 1}"
    if now["labels_sha256"] != recorded["labels_sha256"]:
        raise IdentityMismatchError(f"the labels of {rows} differ from those {what} learned from{where}; "
                                    + fix)
    same_chunks = "chunks_sha256" in now and now.get("chunk_size") == recorded.get("chunk_size")
    if same_chunks and "chunks_sha256" in recorded and (
            now["chunks_sha256"], now["tail_sha256"]) != (recorded["chunks_sha256"], recorded["tail_sha256"]):
        raise IdentityMismatchError(f"the features of {rows} differ from those {what} learned from{where} "
                                    "(their chunk digests differ); " + fix)
    if now["edges_sha256"] != recorded["edges_sha256"]:
        raise IdentityMismatchError(f"the features of {rows} differ from those {what} learned from{where}; "
                                    + fix)


__all__ = ["check_rows", "labels_digest", "rows_identity"]
