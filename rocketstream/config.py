"""One place for rocketstream's settings: environment variables, memory budgets and sizes, and the
device rule. Every module reads them from here; nothing else parses the environment.

Environment variables (read when used, so a worker's own environment counts):

==============================  ==========================================================================
``ROCKETSTREAM_NATIVE=0``       use the torch path on the CPU instead of the native C kernel
``ROCKETSTREAM_TRITON=0``       use the torch path on CUDA instead of the fused Triton kernels
``ROCKETSTREAM_AUDIT_LOG=F``    append one JSON line per chunk written (or skipped) to the file ``F``
``ROCKETSTREAM_CLUSTER_TIMEOUT``  seconds a distributed run waits without workers or scheduler (60;
                                ``inf``: forever)
==============================  ==========================================================================

The device rule: ``device=None`` means the accelerator of the process that runs the work if it has
one (CUDA), else its CPU; everywhere (fit, transform, predict, heads, the estimator, the tsai API).
"""

from __future__ import annotations

import os
from typing import Any

from .errors import InputError

# ------------------------------------------------------------------------------ environment
ENV_NATIVE = "ROCKETSTREAM_NATIVE"
ENV_TRITON = "ROCKETSTREAM_TRITON"
ENV_AUDIT_LOG = "ROCKETSTREAM_AUDIT_LOG"
ENV_CLUSTER_TIMEOUT = "ROCKETSTREAM_CLUSTER_TIMEOUT"
_OFF = ("0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """Whether the on/off variable ``name`` is on (unset counts as on; 0/false/no/off as off).

    Parameters
    ----------
    name : str
        The environment variable.

    Returns
    -------
    bool
    """
    return os.environ.get(name, "1").strip().lower() not in _OFF


def env_path(name: str) -> str | None:
    """The path named by the variable ``name``, or None when it is unset or empty.

    Parameters
    ----------
    name : str
        The environment variable.

    Returns
    -------
    str or None
    """
    return os.environ.get(name) or None


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the variable ``name`` (``inf`` allowed), else ``default``.

    Parameters
    ----------
    name : str
        The environment variable.
    default : float
        Used when the variable is unset or empty.

    Returns
    -------
    float
        Seconds, positive (``inf`` allowed).

    Raises
    ------
    InputError
        The variable is set to something that is not a positive number.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:  # also rejects NaN
        raise InputError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


# ------------------------------------------------------------------- memory budgets and sizes
MIB, GIB = 2**20, 2**30
#: the core transform's and bias fit's micro-batch memory when no ``memory_budget`` is given
MEMORY_BUDGET = 256 * MIB
#: per-step working set of the torch path on the CPU: small enough to stay in cache
CPU_STEP_BUDGET = 8 * MIB
#: input rows converted to contiguous float32 at once for the native CPU kernel
NATIVE_INPUT_BUDGET = 64 * MIB
#: the CUDA engine's default budget: this share of the free GPU memory, at most GPU_MAX_BUDGET
GPU_FREE_FRACTION = 0.25
GPU_MAX_BUDGET = 4 * GIB
#: input bytes per task when the input has no regular sample chunking of its own
TASK_CHUNK_BYTES = 64 * MIB
#: bytes per chunk of the stores ``rocketstream ingest`` writes and of windows over a recording
INGEST_CHUNK_BYTES = 32 * MIB
#: validation rows of softmax training kept in memory up to this size, else streamed each epoch
VALIDATION_CACHE_BYTES = 64 * MIB
#: chunks per submitted graph: the client's memory stays flat whatever the number of chunks
GRAPH_BATCH = 512
#: done markers read per request
MARKER_BATCH = 4096
#: seconds a distributed run waits without workers or scheduler, unless ROCKETSTREAM_CLUSTER_TIMEOUT says
CLUSTER_TIMEOUT = 60.0


# ----------------------------------------------------------------------------- device rule
def resolve_device(device: Any = None) -> Any:
    """The torch device for ``device``: None means CUDA where this process has it, else the CPU.

    Parameters
    ----------
    device : str, torch.device or None
        The device asked for.

    Returns
    -------
    torch.device

    Raises
    ------
    RuntimeError
        ``device`` is not a valid torch device string.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


__all__ = ["CLUSTER_TIMEOUT", "CPU_STEP_BUDGET", "ENV_AUDIT_LOG", "ENV_CLUSTER_TIMEOUT", "ENV_NATIVE",
           "ENV_TRITON", "GIB", "GPU_FREE_FRACTION", "GPU_MAX_BUDGET", "GRAPH_BATCH", "INGEST_CHUNK_BYTES",
           "MARKER_BATCH", "MEMORY_BUDGET", "MIB", "NATIVE_INPUT_BUDGET", "TASK_CHUNK_BYTES",
           "VALIDATION_CACHE_BYTES", "env_flag", "env_path", "env_seconds", "resolve_device"]
