"""Loading a head of whichever kind a file holds: the file's metadata names the kind, a registry the class."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping

from rocketstream.core import ModelFileError

from .base import Head
from .serialize import head_file, read_head_kind

#: head kind -> "module:class" of the class that reads it (each class's ``kind``)
_CLASSES = {"ridge": "ridge:RidgeHead", "softmax": "softmax:SoftmaxHead"}


class _HeadKinds(Mapping[str, type[Head]]):
    """The registry: a class is imported when its kind is looked up (loading a ridge head needs no
    torch, which the softmax head is built on)."""

    def __getitem__(self, kind: str) -> type[Head]:
        module, name = _CLASSES[kind].split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASSES)

    def __len__(self) -> int:
        return len(_CLASSES)


#: head kind (as recorded in the file's metadata) -> the class that reads it
HEAD_KINDS: Mapping[str, type[Head]] = _HeadKinds()


def load_head(path: str | os.PathLike) -> Head:
    """Load a head saved by any head class, whichever kind the file holds.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file (the suffix may be left out) or a softmax checkpoint directory holding
        ``head.npz``; ``~`` and ``file://`` are accepted.

    Returns
    -------
    Head
        A fitted :class:`RidgeHead` or :class:`SoftmaxHead`.

    Raises
    ------
    FileNotFoundError
        If there is no such file (or the directory holds no ``head.npz``).
    ModelFileError
        If the file is not a readable head file, records an unknown kind, or fails its sha256 check.
    """
    p = head_file(path)
    kind = read_head_kind(p)
    cls = HEAD_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"{p} is not a rocketstream head file (kind {kind!r}); expected a "
                             f"{' or '.join(HEAD_KINDS)} head from `rocketstream train`")
    return cls.load(p)


__all__ = ["HEAD_KINDS", "load_head"]
