"""Errors that mean "the data or the request is wrong", not "rocketstream has a bug".

All derive from :class:`RocketstreamError` (a ``ValueError``), so ``except ValueError`` keeps working
and the CLI reports them as one line with exit code 2. Messages name the problem and the fix.
"""

from __future__ import annotations


class RocketstreamError(ValueError):
    """Base class: bad input, damaged data or a request that cannot be carried out safely."""


class IntegrityError(RocketstreamError):
    """Stored data fails a check: a damaged, truncated or missing chunk, or a digest mismatch."""


class MissingChunkError(IntegrityError):
    """A chunk of a Zarr input is absent (it would otherwise be read as the fill value)."""


class IdentityMismatchError(RocketstreamError):
    """Two things that must belong together do not: resume with another input, a head used with
    another model."""


class UnsafeOutputError(RocketstreamError, FileExistsError):
    """An output that would destroy an input or something rocketstream did not make."""


class PreflightError(RocketstreamError):
    """A check made before anything is written failed: device, scheduler, memory for one chunk."""


class ClusterLostError(RocketstreamError, RuntimeError):
    """The Dask scheduler, or every one of its workers, went away during a run."""


__all__ = ["ClusterLostError", "IdentityMismatchError", "IntegrityError", "MissingChunkError",
           "PreflightError", "RocketstreamError", "UnsafeOutputError"]
