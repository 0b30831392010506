"""Where inputs and outputs live, decided once on the client.

Every path a command is given is resolved here before any graph is built: a local path becomes an
absolute, symlink-free path (so a Dask worker whose working directory differs opens the same file),
and a URL is kept whole for opening but shown only with its credentials removed. Messages, store
attributes, model files and logs use :attr:`Location.display`, never the raw URL.

The overlap rule: an output that is, contains, or is inside one of the inputs is refused before
anything is touched (``transform x.zarr --output x.zarr --overwrite`` would otherwise delete its own
input first).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UnsafeOutputError

# user:password@ (or a bare token@) after the scheme of any URL in a text; up to the last '@' before a
# space, since secret keys may hold '/' or '@' (an '@' later in a path hides a little too much, never less)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s'\"]*)@")
# query values that carry secrets: presigned S3 URLs, SAS tokens, API keys
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:[A-Za-z0-9_\-]*(?:signature|sig|token|secret|password|passwd|key|credential|"
    r"auth)[A-Za-z0-9_\-]*))=(?P<value>[^&#\s'\"]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with URL credentials (``user:password@``) and secret query values replaced by ``***``.

    Parameters
    ----------
    text : str
        Any text (a URL, a message).

    Returns
    -------
    str
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", str(text))
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}=***", text)


def is_url(path: str | os.PathLike) -> bool:
    """True for fsspec URLs such as ``s3://bucket/x.zarr`` or ``memory://x``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool
    """
    return "://" in str(path)


@dataclass(frozen=True)
class Location:
    """A resolved input or output: ``target`` opens it, ``display`` is safe to print and store.

    Make one with :func:`resolve`.

    Parameters
    ----------
    target : str
        The absolute local path, or the whole URL (with any credentials).
    display : str
        ``target`` with credentials removed.
    url : bool
        Whether ``target`` is an fsspec URL.
    """

    target: str
    display: str
    url: bool

    @property
    def path(self) -> Path:
        """The local path (only for local locations).

        Raises
        ------
        ValueError
            The location is a URL.
        """
        if self.url:
            raise ValueError(f"{self.display} is a URL, not a local path")
        return Path(self.target)

    def sibling(self, suffix: str) -> Location:
        """The location ``<this><suffix>`` beside this one (e.g. its ``.lock``).

        Parameters
        ----------
        suffix : str
            Appended to the name.

        Returns
        -------
        Location
        """
        target = self.target.rstrip("/") + suffix
        return Location(target, redact(target), self.url)

    def __str__(self) -> str:
        return self.display

    def _key(self) -> tuple[str, str]:
        """(authority, path) for comparisons: credentials, query and trailing slashes left out."""
        if not self.url:
            return "", self.target.rstrip(os.sep) or os.sep
        parts = urlsplit(self.target)
        host = parts.netloc.rpartition("@")[2].lower()
        return f"{parts.scheme.lower()}://{host}", parts.path.rstrip("/")

    def contains(self, other: Location) -> bool:
        """True if ``other`` is this location or lies inside it.

        Credentials, query strings and trailing slashes are ignored.

        Parameters
        ----------
        other : Location

        Returns
        -------
        bool
        """
        (a_auth, a_path), (b_auth, b_path) = self._key(), other._key()
        if a_auth != b_auth:
            return False
        sep = "/" if self.url else os.sep
        return b_path == a_path or b_path.startswith(a_path.rstrip(sep) + sep)


def resolve(path: str | os.PathLike | Location) -> Location:
    """Resolve ``path`` once: absolute and symlink-free for local paths, whole for URLs.

    Parameters
    ----------
    path : str, os.PathLike or Location
        A local path (``~`` and ``file://`` allowed), an fsspec URL, or a Location (returned as is).

    Returns
    -------
    Location
    """
    if isinstance(path, Location):
        return path
    text = os.fspath(path)
    if is_url(text):
        if text.startswith("file://"):
            return resolve(text[len("file://"):])
        return Location(text, redact(text), True)
    target = os.path.realpath(os.path.expanduser(text))
    return Location(target, target, False)


def check_outputs(outputs: Iterable[tuple[str, Location]], inputs: Iterable[tuple[str, Location]]) -> None:
    """Refuse an output that is, contains, or is inside an input (checked before anything is written).

    ``outputs`` and ``inputs`` are ``(role, location)`` pairs, e.g. ``("output", loc)``, ``("input", loc)``.

    Parameters
    ----------
    outputs, inputs : iterable of tuple of (str, Location)
        The roles name the locations in the message.

    Raises
    ------
    UnsafeOutputError
        An output overlaps an input.
    """
    inputs = list(inputs)
    for out_role, out in outputs:
        for in_role, src in inputs:
            if out.contains(src) or src.contains(out):
                how = ("is" if out.contains(src) and src.contains(out) else
                       "contains" if out.contains(src) else "is inside")
                raise UnsafeOutputError(
                    f"the {out_role} {out.display} {how} the {in_role} {src.display}; writing it would "
                    f"destroy the {in_role}: choose an {out_role} path outside it")


__all__ = ["Location", "check_outputs", "is_url", "redact", "resolve"]
