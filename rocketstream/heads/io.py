"""Loading a head of whichever kind a file holds: the file's metadata names the kind, a registry the class."""

from __future__ import annotations

import os

from rocketstream.core import ModelFileError

from .base import Head
from .ridge import RidgeHead
from .serialize import head_file, read_head_kind
from .softmax import SoftmaxHead

#: head kind (as recorded in the file's metadata) -> the class that reads it
HEAD_KINDS: dict[str, type[Head]] = {cls.kind: cls for cls in (RidgeHead, SoftmaxHead)}


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
