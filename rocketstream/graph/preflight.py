"""Checks made before any output is created or replaced: the device exists where the tasks run, and
one chunk fits in the memory of the process that computes it.

A failure here leaves every file as it was (an old output is not removed, no empty store is made).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dask

from ..errors import ClusterLostError, PreflightError
from .schedule import CLUSTER_TIMEOUT_ENV, compute, resolve_scheduler

if TYPE_CHECKING:
    import torch


def device_problem(device: torch.device | str | None) -> str | None:
    """Why ``device`` cannot be used in this process (None if it can).

    Parameters
    ----------
    device : str, torch.device or None
        The device asked for; None always works.

    Returns
    -------
    str or None
    """
    if device is None or (isinstance(device, str) and device == "cpu"):  # always there; no torch needed
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        return f"{device!r} is not a torch device ({exc}); use cpu, cuda or cuda:N"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available (torch.cuda.is_available() is False)"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"there are {torch.cuda.device_count()} CUDA device(s), so {dev} does not exist"
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            return "MPS is not available"
    elif dev.type != "cpu":
        return f"device type {dev.type!r} is not supported; use cpu or cuda"
    return None


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _probe(device: torch.device | str | None) -> tuple[str | None, int]:
    return device_problem(device), _available_memory()


def check_resources(target: Any, device: torch.device | str | None, task_bytes: int, *,
                    rows: int, option: str = "--chunk-size / chunk_size") -> None:
    """Raise :class:`PreflightError` unless ``device`` exists where the tasks run and a task of
    ``task_bytes`` (for ``rows`` samples) fits in the memory available there.

    ``target`` is what :func:`~rocketstream.graph.schedule.session` yields: a local scheduler name or a
    distributed client (then the probe runs as one task on a worker, and the worker's memory limit
    per thread also bounds a task).

    Parameters
    ----------
    target : Any
        The scheduler, as :func:`~rocketstream.graph.schedule.session` yields it.
    device : str, torch.device or None
        The device the tasks will use.
    task_bytes : int
        Memory one task needs.
    rows : int
        Samples per task (to suggest a size that fits).
    option : str, default "--chunk-size / chunk_size"
        The option to name in the message.

    Raises
    ------
    PreflightError
        The device is missing, a task would not fit in memory, or no task can run on the cluster.
    """
    kind, client = resolve_scheduler(target)
    where = "this machine"
    limit = None
    if kind == "distributed" and not isinstance(client, str):
        try:  # one task on a worker, under the same watchdog as the run itself
            problem, free = compute(dask.delayed(_probe, pure=False)(device), client)
        except ClusterLostError as exc:
            raise PreflightError(f"cannot run a task on the Dask cluster: {exc}; start workers with "
                                 f"`dask worker ADDRESS`, or wait longer with {CLUSTER_TIMEOUT_ENV}=SECONDS"
                                 ) from exc
        where = "the Dask workers"
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        per_thread = [w.get("memory_limit", 0) / max(1, w.get("nthreads", 1)) for w in workers
                      if w.get("memory_limit")]
        limit = int(min(per_thread)) if per_thread else None
    else:
        problem, free = _probe(device)
    if problem:
        raise PreflightError(f"device {device} cannot be used on {where}: {problem}; pass --device cpu / "
                             "device='cpu' or leave it out to use what each worker has")
    room = min(free, limit) if limit else free
    if task_bytes > room:
        per_row = max(1, task_bytes // max(1, rows))
        fits = max(1, room // (2 * per_row))
        raise PreflightError(
            f"{rows} samples per task need about {_gib(task_bytes)} GiB, more than the {_gib(room)} GiB "
            f"available per task on {where}; use a smaller {option} (e.g. {fits})")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


__all__ = ["check_resources", "device_problem"]
