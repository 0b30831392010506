"""The predictions store: a :class:`~rocketstream.storage.chunkstore.ChunkStore` holding what a head
outputs per sample, readable with ``xarray.open_zarr``.

Layout (besides the markers and digests every chunk store has)::

    PRED.zarr/            attrs["rocketstream"] = {format, task, head, model, input, classes, complete, ...}
      label    (sample,)          predicted class labels (classification)
      proba    (sample, class)    float32 softmax probabilities (softmax classification heads)
      decision (sample[, class])  float64 ridge decision scores (ridge classification heads)
      value    (sample[, target]) float64 predicted values (regression)
      class    (class,)           the class labels, in the column order of proba / decision

Which data arrays a store has comes from the head (its ``output_layout``). ``complete`` is set once
every chunk is written, and then the consolidated metadata ``xarray.open_zarr`` looks for is written
(:mod:`rocketstream.storage.consolidated`). Stores of format 1 (before markers and digests) are read as
complete or not as a whole, and cannot be resumed.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from .chunkstore import ATTR, ChunkStore, Layout
from .consolidated import consolidate
from .locations import Location


class PredictionStore(ChunkStore):
    """Handle on a predictions store; cheap to open, safe to use from many processes at once.

    Open one with :meth:`~ChunkStore.open` (``PredictionStore.open(path)``), make one with :meth:`create`;
    the constructor takes the arguments of :class:`~rocketstream.storage.chunkstore.ChunkStore`.
    """

    KIND: ClassVar[str] = "predictions"
    VERSION: ClassVar[int] = 2  # 2: done markers, digests, input identity (resumable)
    MAKER: ClassVar[str] = "rocketstream predict"
    MARKED_SINCE: ClassVar[int] = 2

    @classmethod
    def create(cls, path: str | os.PathLike | Location, *, n_samples: int, chunk_size: int,
               layout: dict[str, tuple[tuple[int, ...], tuple[int, ...], Any, tuple[str, ...]]],
               classes: np.ndarray | None, meta: dict[str, Any], overwrite: bool = False,
               storage_options: dict[str, Any] | None = None,
               sample_coords: dict[str, np.ndarray] | None = None) -> PredictionStore:
        """Create an empty store for the arrays of ``layout`` (name -> shape, chunks, dtype, dims), with
        the ``class`` coordinate when ``classes`` are given; replaces only a predictions store, and only
        with ``overwrite``.

        Parameters
        ----------
        path : str, os.PathLike or Location
            Local path (in an existing directory) or fsspec URL.
        n_samples, chunk_size : int
            Samples, and samples per chunk.
        layout : dict
            ``name -> (shape, chunks, dtype, dims)``, as a head's ``output_layout`` gives.
        classes : numpy.ndarray or None
            The class labels (classification), None for regression.
        meta : dict
            Attributes to record (task, head, model, input identity...).
        overwrite : bool, default False
            Replace an existing predictions store.
        storage_options : dict, optional
            fsspec options for a URL.
        sample_coords : dict of str to numpy.ndarray, optional
            The input's coordinates along ``sample`` (``sample``, ``label``...).

        Returns
        -------
        PredictionStore

        Raises
        ------
        FileExistsError
            A predictions store is there and ``overwrite`` is false.
        UnsafeOutputError
            Something else is there.
        FileNotFoundError
            The parent directory does not exist.
        """
        full: Layout = {name: (shape, chunks, dtype, dims, {} if dtype is str else {"fill_value": 0})
                        for name, (shape, chunks, dtype, dims) in layout.items()}
        coords = {k: ("sample", v) for k, v in (sample_coords or {}).items()}
        if classes is not None:
            text = classes.dtype.kind in "UST"
            coords["class"] = ("class", np.asarray([str(c) for c in classes.tolist()]) if text else classes)
        return cls._create(path, n_samples=n_samples, chunk_size=chunk_size, layout=full,
                           meta={**meta, "complete": False}, coords=coords, overwrite=overwrite,
                           storage_options=storage_options)

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``, as recorded."""
        return str(self.meta.get("task"))

    def mark_complete(self, **extra: Any) -> None:
        """Record that every chunk is written (checked against the markers).

        Parameters
        ----------
        **extra
            More attributes to record with ``complete`` (e.g. ``seconds``).

        Raises
        ------
        RuntimeError
            Some chunk is not marked done.
        """
        if not self.is_complete():
            raise RuntimeError(f"{self.display} has chunks not yet written; it cannot be marked complete")
        self.meta = {**self.meta, **extra, "complete": True}
        self.group.attrs[ATTR] = self.meta
        self.group = consolidate(self.group)  # for xarray.open_zarr, which warns without it


__all__ = ["PredictionStore"]
