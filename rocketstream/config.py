"""One place for rocketstream's settings: environment variables, memory budgets and sizes, and the
device rule. Every module reads them from here; nothing else parses the environment.

Environment variables (read when used, so a worker's own environment counts):

==============================  ==========================================================================
``ROCKETSTREAM_NATIVE=0``       use the torch path on the CPU instead of the native C kernel
``ROCKETSTREAM_NATIVE_WIDTH=8``  the native kernel's vector width: ``8``, ``16`` (AVX-512) or ``auto`` (the
                                widest the CPU has, the default); every width gives the same bits
``ROCKETSTREAM_TRITON=0``       use the torch path on CUDA instead of the fused Triton kernels
``ROCKETSTREAM_AUDIT_LOG=F``    append one JSON line per chunk written (or skipped) to the file ``F``
``ROCKETSTREAM_CLUSTER_TIMEOUT``  seconds a distributed run waits without workers or scheduler (60;
                                ``inf``: forever)
==============================  ==========================================================================

The device rule: ``device=None`` means the accelerator of the process that runs the work if it has
one (CUDA), else its CPU; everywhere (fit, transform, predict, heads, the estimator, the tsai API).
:func:`resolve_device` applies it; :func:`resolve_device_type` gives the same answer without importing
torch where no GPU can exist (a Linux machine with no GPU device nodes), so the native CPU path starts
without torch.
"""

from __future__ import annotations

import glob
import os
import sys
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
#: an automatic task size is cut down until a local run has at least this many tasks per worker, so
#: that no worker idles while the last tasks run (see ``rocketstream.api.transform.chunk_rows``)...
TASKS_PER_WORKER = 2
#: ...but not below this many bytes of input and features per task (tiny data stays one task)
MIN_TASK_BYTES = 1 * MIB
#: bytes per chunk of the stores ``rocketstream ingest`` writes and of windows over a recording: small
#: enough that a store of a few hundred MiB already has several chunks per core to read and transform
INGEST_CHUNK_BYTES = 8 * MIB
#: validation rows of softmax training kept in memory up to this size, else streamed each epoch
VALIDATION_CACHE_BYTES = 64 * MIB
#: chunks per submitted graph: the client's memory stays flat whatever the number of chunks
GRAPH_BATCH = 512
#: done markers read per request
MARKER_BATCH = 4096
#: seconds a distributed run waits without workers or scheduler, unless ROCKETSTREAM_CLUSTER_TIMEOUT says
CLUSTER_TIMEOUT = 60.0


# ----------------------------------------------------------------------------- device rule
#: Linux device nodes without which no GPU is visible to torch: NVIDIA (desktop/server, Jetson), WSL 2
#: (CUDA through /dev/dxg) and AMD ROCm (torch's "cuda" on HIP)
_GPU_NODES = ("/dev/nvidia*", "/dev/nvhost*", "/dev/nvmap", "/dev/dxg", "/dev/kfd")


def gpu_possible() -> bool:
    """Whether this process may have a CUDA device, answered without importing torch where it can be.

    On Linux a GPU is reached through device nodes (:data:`_GPU_NODES`); with none of them
    ``torch.cuda.is_available()`` is False, so the answer is False without asking torch. Elsewhere,
    or when a node exists, it is True: then torch decides (:func:`resolve_device`).

    Returns
    -------
    bool
    """
    if not sys.platform.startswith("linux"):
        return True
    return any(glob.glob(pattern) for pattern in _GPU_NODES)


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
        return torch.device("cuda" if gpu_possible() and torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_device_type(device: Any = None) -> str:
    """``resolve_device(device).type`` (``"cpu"``, ``"cuda"``...), without importing torch when the
    answer is the CPU anyway: ``device`` is ``"cpu"``, or None on a machine that cannot have a GPU
    (:func:`gpu_possible`). The native CPU path then runs without torch.

    Parameters
    ----------
    device : str, torch.device or None
        The device asked for.

    Returns
    -------
    str

    Raises
    ------
    RuntimeError
        ``device`` is not a valid torch device string.
    """
    if (device is None and not gpu_possible()) or (isinstance(device, str) and device == "cpu"):
        return "cpu"
    return resolve_device(device).type


def cpu_threads() -> int:
    """Threads for the native CPU kernel: torch's intra-op thread count when torch is loaded (so
    ``torch.set_num_threads`` applies), else the default torch would take: ``MKL_NUM_THREADS``, else
    ``OMP_NUM_THREADS``, else the physical cores. The count never changes the result.

    Returns
    -------
    int
        At least 1.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return max(1, int(torch.get_num_threads()))
    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
    import psutil

    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


__all__ = ["CLUSTER_TIMEOUT", "CPU_STEP_BUDGET", "ENV_AUDIT_LOG", "ENV_CLUSTER_TIMEOUT", "ENV_NATIVE",
           "ENV_TRITON", "GIB", "GPU_FREE_FRACTION", "GPU_MAX_BUDGET", "GRAPH_BATCH", "INGEST_CHUNK_BYTES",
           "MARKER_BATCH", "MEMORY_BUDGET", "MIB", "MIN_TASK_BYTES", "NATIVE_INPUT_BUDGET",
           "TASKS_PER_WORKER", "TASK_CHUNK_BYTES", "VALIDATION_CACHE_BYTES", "cpu_threads", "env_flag",
           "env_path", "env_seconds", "gpu_possible", "resolve_device", "resolve_device_type"]
