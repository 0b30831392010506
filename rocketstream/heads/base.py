"""The interface every head implements, so that prediction, the CLI and the stores never ask which kind it is.

A head is a scikit-learn style estimator: ``__init__`` stores hyper-parameters only, :meth:`Head.fit`
learns from a (n_samples, n_features) features array and one label (or target) per row, and the
fitted state ends in ``_``. Beyond ``predict`` / ``decision_function`` a fitted head describes what
a predictions store holds for it:

- :meth:`Head.outputs`: the arrays written for one chunk of feature rows (name -> array);
- :meth:`Head.output_layout`: their (shape, chunks, dtype, dims), to create the store up front;
- :meth:`Head.info`: the identity recorded in the store's attributes (kind, task, file digest, ...).

Names of the outputs: ``label`` (classification), plus ``proba`` (float32 class probabilities, softmax)
or ``decision`` (float64 decision scores, ridge); ``value`` (float64) for regression. A subclass sets
``kind`` and supplies the few kind-specific pieces (``_class_scores``, ``_score_layout``,
``_n_targets``, ``_info_extra``); everything else is shared here. Files: :meth:`Head.save` writes an
``.npz`` of plain arrays and JSON (``serialize.py``), :func:`rocketstream.heads.load_head` reads any kind.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .serialize import head_file, read_head, write_head

#: name -> (shape, chunks, dtype, dims) of one array of a predictions store
Layout = dict[str, tuple[tuple[int, ...], tuple[int, ...], Any, tuple[str, ...]]]

TASKS = ("classification", "regression")


class Head(ABC):
    """A linear head on MiniRocket features: ridge (:class:`RidgeHead`) or softmax (:class:`SoftmaxHead`).

    Attributes
    ----------
    kind : str
        ``"ridge"`` or ``"softmax"`` (class attribute; the ``kind`` recorded in the head file).
    task : str
        ``"classification"`` or ``"regression"``.
    classes_ : numpy.ndarray or None
        The sorted class labels (classification), None for regression.
    n_features_in_ : int
        Number of features the head was fitted on.
    model_fingerprint_ : str or None
        Fingerprint of the MiniRocket model whose features trained the head, where known.
    """

    kind: ClassVar[str]
    task: str
    #: the attribute whose presence means "fitted"
    _fitted_attr: ClassVar[str] = "n_features_in_"

    # ------------------------------------------------------------------ estimator
    @abstractmethod
    def fit(self, features: Any, labels: Any, model: Any = None) -> Head:
        """Fit the head.

        Parameters
        ----------
        features : array-like
            (n_samples, n_features): a features store, xarray DataArray, Zarr, NumPy or Dask array.
        labels : array-like
            One class label (classification) or target (regression, 1-D or 2-D) per row.
        model : MiniRocketParameters, optional
            The model that made the features, when the features do not record it themselves.

        Returns
        -------
        Head
            ``self``, fitted.
        """

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, as given to ``__init__`` (scikit-learn style).

        Returns
        -------
        dict
            ``{name: value}`` for every parameter of ``__init__``.
        """
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise RuntimeError(
                f"this {type(self).__name__} is not fitted yet; call fit(features, labels) first"
            )

    # ------------------------------------------------------------------ predictions
    @abstractmethod
    def decision_function(self, features: Any, device: Any = None) -> np.ndarray:
        """Raw scores of the linear layer, streamed block by block.

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : str or torch.device, optional
            Where to compute (heads that run on torch); CPU by default.

        Returns
        -------
        numpy.ndarray
            The scores, one row per sample.

        Raises
        ------
        InputError
            If the features have another number of columns than the head was fitted on.
        """

    @abstractmethod
    def predict(self, features: Any, device: Any = None) -> np.ndarray:
        """Predicted class labels (classification) or target values (regression).

        Parameters
        ----------
        features : array-like
            (n_samples, n_features_in_) features.
        device : str or torch.device, optional
            Where to compute (heads that run on torch); CPU by default.

        Returns
        -------
        numpy.ndarray
            (n_samples,) labels, or (n_samples[, n_targets]) float64 values.
        """

    def outputs(self, features: Any, device: Any = None) -> dict[str, np.ndarray]:
        """The arrays a predictions store holds for these feature rows.

        Parameters
        ----------
        features : array-like
            (rows, n_features_in_) features of one chunk.
        device : str or torch.device, optional
            Where to compute (heads that run on torch); CPU by default.

        Returns
        -------
        dict of str to numpy.ndarray
            ``{"label", "proba"}`` (softmax classification), ``{"label", "decision"}`` (ridge
            classification) or ``{"value"}`` (regression), matching :meth:`output_layout`.
        """
        self._check_fitted()
        if self.classes_ is None:
            return {"value": np.asarray(self.predict(features, device=device), dtype=np.float64)}
        name, scores = self._class_scores(features, device)
        winner = (scores > 0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        return {"label": self.classes_[winner], name: scores}

    def output_layout(self, n_samples: int, chunk_rows: int) -> Layout:
        """Shape, chunks, dtype and dimension names of each array :meth:`outputs` gives.

        Parameters
        ----------
        n_samples : int
            Rows of the whole predictions store.
        chunk_rows : int
            Rows per chunk (one :meth:`outputs` call per chunk).

        Returns
        -------
        dict
            ``name -> (shape, chunks, dtype, dims)``; ``dtype`` is ``str`` for text class labels.
        """
        self._check_fitted()
        n, c = int(n_samples), int(chunk_rows)
        if self.classes_ is None:
            t = self._n_targets()
            if t is None:
                return {"value": ((n,), (c,), "float64", ("sample",))}
            return {"value": ((n, t), (c, t), "float64", ("sample", "target"))}
        classes = np.asarray(self.classes_)
        label_dtype: Any = str if classes.dtype.kind in "UST" else classes.dtype
        return {"label": ((n,), (c,), label_dtype, ("sample",)), **self._score_layout(n, c, classes.size)}

    @abstractmethod
    def _class_scores(self, features: Any, device: Any) -> tuple[str, np.ndarray]:
        """(name, scores) stored beside the labels: ("proba", float32) or ("decision", float64)."""

    @abstractmethod
    def _score_layout(self, n: int, chunk: int, n_classes: int) -> Layout:
        """The layout entry of the scores :meth:`_class_scores` gives."""

    @abstractmethod
    def _n_targets(self) -> int | None:
        """Regression outputs per row, or None when the targets were 1-D."""

    # ------------------------------------------------------------------ identity and files
    def info(self, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """What a predictions store records about the head.

        Parameters
        ----------
        path : str or os.PathLike, optional
            The head file (or softmax checkpoint directory) the head was loaded from; its resolved
            path and sha256 are recorded.

        Returns
        -------
        dict
            ``kind``, ``task``, ``n_features``, [``path``, ``sha256``], ``alpha`` (ridge) or
            ``best_epoch`` (softmax), and ``model_fingerprint``.

        Raises
        ------
        FileNotFoundError
            If ``path`` names no head file.
        """
        self._check_fitted()
        info: dict[str, Any] = {"kind": self.kind, "task": self.task, "n_features": int(self.n_features_in_)}
        if path is not None:
            p = head_file(path)
            info["path"] = str(p)
            info["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
        info.update(self._info_extra())
        info["model_fingerprint"] = getattr(self, "model_fingerprint_", None)
        return info

    @abstractmethod
    def _info_extra(self) -> dict[str, Any]:
        """The kind-specific entries of :meth:`info`."""

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fitted head to an ``.npz`` file (plain arrays + JSON metadata, no pickle).

        Parameters
        ----------
        path : str or os.PathLike
            The file; ``.npz`` is appended when missing.
        overwrite : bool, default False
            Replace an existing head file (never anything else).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        FileExistsError
            If the file exists and ``overwrite`` is False, or the path holds something else.
        """
        self._check_fitted()
        meta, arrays = self._state()
        meta = {**meta, "model_fingerprint": getattr(self, "model_fingerprint_", None)}
        return write_head(path, self.kind, meta, arrays, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Head:
        """Read a head of this kind written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file.

        Returns
        -------
        Head
            The fitted head.

        Raises
        ------
        ModelFileError
            If the file is damaged, edited (sha256 check) or holds another kind of head.
        """
        meta, arrays = read_head(path, cls.kind)
        head = cls._from_state(meta, arrays)
        head.model_fingerprint_ = meta.get("model_fingerprint")
        return head

    @abstractmethod
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The metadata and arrays :meth:`save` writes (the model fingerprint is added)."""

    @classmethod
    @abstractmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Head:
        """The fitted head from what :meth:`_state` gave."""


def check_task(task: str) -> None:
    """Raise ValueError unless ``task`` is "classification" or "regression"."""
    if task not in TASKS:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
