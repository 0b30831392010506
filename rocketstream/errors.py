"""Every error that means "the data or the request is wrong", not "rocketstream has a bug".

All derive from :class:`RocketstreamError` (a ``ValueError``), so ``except ValueError`` keeps working;
where a standard class also fits, it is mixed in (a missing file is also a ``FileNotFoundError``, an
output that may not be replaced also a ``FileExistsError``). The CLI reports these, and ``OSError``s,
as one line with exit code 2; anything else is a bug and shows its traceback. Messages name the
problem and the fix; where an error is raised because of another one, the cause is chained.

======================  ====================================================================
class                   raised when
======================  ====================================================================
InputError              input data or arguments that cannot be used as given
UsageError              a command-line combination that cannot work (an ``InputError``)
IngestError             a file that cannot be read as a time-series collection
ModelFileError          a model or head file that is damaged, edited or of another format
NotFittedError          a transformer or module used before ``fit`` (also an ``AttributeError``)
CheckpointError         a training checkpoint that is damaged or belongs to another run
StoreError              a store of the wrong kind, unfinished, or unusable as asked
StoreLockedError        another job holds the output's writer lock
NotFoundError           a file, store or array that does not exist
IntegrityError          stored data fails a check: damaged, truncated or altered chunk
MissingChunkError       a chunk of a Zarr input is absent (would read as the fill value)
IdentityMismatchError   things that must belong together do not (resume from another input,
                        a head used with another model)
UnsafeOutputError       an output that would destroy an input or what rocketstream did not make
PreflightError          a check before writing failed: device, scheduler, memory per chunk
ClusterLostError        the Dask scheduler, or all of its workers, went away during a run
======================  ====================================================================
"""

from __future__ import annotations


class RocketstreamError(ValueError):
    """Base class: bad input, damaged data or a request that cannot be carried out safely."""


class InputError(RocketstreamError):
    """Input data or arguments that cannot be used as given: shape, dtype, values, or a mismatch with
    the fitted model."""


class UsageError(InputError):
    """A command-line combination that cannot work; the message says the fix."""


class IngestError(InputError):
    """A file that cannot be read as a time-series collection; the message names file and line."""


class ModelFileError(RocketstreamError):
    """A parameters or head file (or dict) that is corrupt, tampered with or of an unknown format."""


class CheckpointError(ModelFileError):
    """A training checkpoint that is damaged, edited, or from another training run."""


class NotFittedError(RocketstreamError, AttributeError):
    """A model was used before it was fitted (or loaded); scikit-learn's meaning of the name."""


class StoreError(RocketstreamError):
    """A store of the wrong kind, whose creation or run did not finish, or that cannot be used as asked."""


class StoreLockedError(RocketstreamError, RuntimeError):
    """The output is being written by another job (its lock is held)."""


class NotFoundError(RocketstreamError, FileNotFoundError):
    """A file, store or array that does not exist."""


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


__all__ = ["CheckpointError", "ClusterLostError", "IdentityMismatchError", "IngestError", "InputError",
           "IntegrityError", "MissingChunkError", "ModelFileError", "NotFittedError", "NotFoundError",
           "PreflightError", "RocketstreamError", "StoreError", "StoreLockedError", "UnsafeOutputError",
           "UsageError"]
