"""Run a Dask collection on the scheduler the user names, with an optional progress bar."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any

import dask
from dask.callbacks import Callback

from ..config import CLUSTER_TIMEOUT, ENV_CLUSTER_TIMEOUT, env_seconds
from ..errors import ClusterLostError, InputError, PreflightError

log = logging.getLogger("rocketstream")

CLUSTER_TIMEOUT_ENV = ENV_CLUSTER_TIMEOUT
DEFAULT_CLUSTER_TIMEOUT = CLUSTER_TIMEOUT
POLL_SECONDS = 1.0  # how often a distributed run checks its scheduler and workers
_CHECK_LIMIT = 30.0  # longest wait for one answer from the scheduler
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)  # distinct classes before Python 3.11
_CANCELLED = (concurrent.futures.CancelledError, asyncio.CancelledError)

LOCAL_SCHEDULERS = {"threads", "threading", "processes", "multiprocessing", "synchronous", "sync",
                    "single-threaded"}
_ADDRESS = re.compile(r"^([a-z]+://)?[\w.\-\[\]:]+:\d+$")


class _TqdmCallback(Callback):
    """Advance a tqdm bar for each finished task whose key name starts with ``prefix``."""

    def __init__(self, prefix: str, bar: Any) -> None:
        super().__init__()
        self.prefix, self.bar = prefix, bar

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if isinstance(name, str) and name.startswith(self.prefix):
            self.bar.update(1)


def progress_bar(total: int, desc: str = "transform") -> Any:
    """A tqdm bar counting chunks (for local schedulers).

    Parameters
    ----------
    total : int
        Chunks to count.
    desc : str, default "transform"
        The bar's label.

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk")


def _existing_client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def resolve_scheduler(scheduler: Any) -> tuple[str, Any]:
    """Return ``("distributed", client_or_address)`` or ``("local", name)``.

    Parameters
    ----------
    scheduler : str, distributed.Client or None
        None (the current distributed client, else threads), a local scheduler name ("threads",
        "processes", "synchronous"...), a scheduler address or a Client.

    Returns
    -------
    tuple of (str, Any)

    Raises
    ------
    InputError
        An unknown scheduler name.
    TypeError
        Neither a name, an address nor a Client.
    """
    if scheduler is None:
        client = _existing_client()
        return ("distributed", client) if client is not None else ("local", "threads")
    if isinstance(scheduler, str):
        if scheduler in LOCAL_SCHEDULERS:
            return "local", scheduler
        if "://" in scheduler or _ADDRESS.match(scheduler):
            return "distributed", scheduler
        raise InputError(f"unknown scheduler {scheduler!r}: use threads, processes, synchronous, or a "
                         "dask.distributed address such as tcp://host:8786")
    if type(scheduler).__name__ == "Client":
        return "distributed", scheduler
    raise TypeError("scheduler must be a name, an address or a distributed.Client, got "
                    f"{type(scheduler).__name__}")


def is_local(scheduler: Any) -> bool:
    """Whether ``scheduler`` runs on a local Dask scheduler (see :func:`resolve_scheduler`).

    Parameters
    ----------
    scheduler : str, distributed.Client or None

    Returns
    -------
    bool
    """
    return resolve_scheduler(scheduler)[0] == "local"


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise PreflightError(f"cannot connect to the Dask scheduler at {address} ({exc}); check the address, "
                             "or start one with `dask scheduler`") from exc


@contextmanager
def session(scheduler: Any) -> Iterator[Any]:
    """Connect once to a scheduler address for several computes; other schedulers pass through.

    Parameters
    ----------
    scheduler : str, distributed.Client or None
        As in :func:`resolve_scheduler`.

    Yields
    ------
    Any
        A Client connected to the address (closed on exit), or ``scheduler`` as given.

    Raises
    ------
    PreflightError
        The scheduler address cannot be reached.
    InputError
        An unknown scheduler name.
    """
    kind, target = resolve_scheduler(scheduler)
    if kind == "distributed" and isinstance(target, str):
        with _connect(target) as client:
            yield client
    else:
        yield scheduler


def resolve_cluster_timeout(value: float | None = None) -> float:
    """Seconds a distributed run waits without workers or scheduler: ``value``, else
    ``$ROCKETSTREAM_CLUSTER_TIMEOUT``, else 60 (``inf``: wait forever).

    Parameters
    ----------
    value : float, optional
        Seconds, positive.

    Returns
    -------
    float

    Raises
    ------
    InputError
        A value (given, or from the environment) that is not a positive number.
    """
    if value is None:
        return env_seconds(CLUSTER_TIMEOUT_ENV, DEFAULT_CLUSTER_TIMEOUT)
    value = float(value)
    if not value > 0:  # also rejects NaN
        raise InputError(f"cluster_timeout must be a positive number of seconds, got {value!r}")
    return value


def _address(client: Any, default: Any = None) -> str:
    """The scheduler address of ``client``, also once it is closed (``scheduler`` is then None)."""
    for get in (lambda: client.scheduler.address, lambda: client.cluster.scheduler_address,
                lambda: client._start_arg if isinstance(client._start_arg, str) else None):
        with suppress(Exception):
            if address := get():
                return str(address)
    return str(default) if default else "an unknown address"


def _n_workers(client: Any, limit: float) -> int | None:
    """Workers the scheduler has now; None when it cannot be asked within ``limit`` seconds."""
    if client.status != "running":
        return None
    try:
        return len(client.nthreads(callback_timeout=limit))
    except Exception:
        return None


def _lost(address: str, status: str) -> ClusterLostError:
    if status in ("closing", "closed"):
        return ClusterLostError(f"the connection to the Dask scheduler at {address} is closed")
    return ClusterLostError(f"lost the connection to the Dask scheduler at {address}")


def _watch(future: Any, client: Any, timeout: float, address: str) -> Any:
    """``future.result()``, but give up (:class:`ClusterLostError`) once the scheduler has had no
    workers, or could not be reached, for ``timeout`` seconds in a row."""
    empty_since: float | None = None
    lost_since: float | None = None
    seen = bool(_n_workers(client, _CHECK_LIMIT))  # whether this run has seen a worker
    while True:
        try:
            return future.result(timeout=POLL_SECONDS)
        except _TIMEOUTS:
            if future.done():  # a task raised TimeoutError, or it finished just now
                return future.result()
        except _CANCELLED as exc:
            if getattr(exc, "reason", None) == "scheduler-connection-lost" or client.status != "running":
                raise _lost(address, client.status) from exc
            raise
        started = time.monotonic()
        n = _n_workers(client, min(max(timeout, POLL_SECONDS), _CHECK_LIMIT))
        now = time.monotonic()
        if n is None:
            lost_since = started if lost_since is None else lost_since
        else:
            lost_since = None
            seen = seen or n > 0
            empty_since = None if n else (now if empty_since is None else empty_since)
        if lost_since is not None and now - lost_since >= timeout:
            error = ClusterLostError(f"lost the connection to the Dask scheduler at {address} "
                                     f"(for {timeout:g} s)")
        elif empty_since is not None and now - empty_since >= timeout:
            what = (f"all Dask workers of the scheduler at {address} are gone" if seen
                    else f"the Dask scheduler at {address} has no workers")
            error = ClusterLostError(f"{what} (none for {timeout:g} s)")
        else:
            continue
        with suppress(Exception):
            future.cancel()
        raise error


def _progress(future: Any, address: str) -> threading.Thread:
    """Show ``distributed.progress`` from a thread (it blocks until the graph ends)."""
    from distributed import progress as dprogress

    def show() -> None:
        try:
            dprogress(future, scheduler=address)
        except Exception as exc:  # a display problem must not stop the run
            log.debug("progress display failed: %s", exc)

    thread = threading.Thread(target=show, name="rocketstream-progress", daemon=True)
    thread.start()
    return thread


def compute(obj: Any, scheduler: Any = None, workers: int | None = None, progress: Any = False,
            progress_prefix: str = "", *, cluster_timeout: float | None = None) -> Any:
    """Compute ``obj`` on ``scheduler`` (None: the current distributed client, else threads).

    ``progress``: for local schedulers a tqdm bar advanced per task named ``progress_prefix...``;
    for distributed ones any true value shows ``distributed.progress``.
    A distributed run raises :class:`ClusterLostError` once its scheduler has had no workers, or could
    not be reached, for ``cluster_timeout`` seconds in a row (see :func:`resolve_cluster_timeout`).

    Parameters
    ----------
    obj : Any
        A Dask collection or Delayed.
    scheduler : str, distributed.Client or None
        As in :func:`resolve_scheduler`.
    workers : int, optional
        Workers of a local scheduler.
    progress : Any, default False
        A tqdm bar (local) or a true value (distributed).
    progress_prefix : str, default ""
        Key prefix of the tasks the bar counts.
    cluster_timeout : float, optional
        Seconds without workers or scheduler before giving up.

    Returns
    -------
    Any
        The computed result.

    Raises
    ------
    ClusterLostError
        The scheduler, or all of its workers, went away for ``cluster_timeout`` seconds.
    PreflightError
        A scheduler address cannot be reached.
    InputError
        An unknown scheduler name or a bad ``cluster_timeout``.
    """
    kind, target = resolve_scheduler(scheduler)
    if kind == "local":
        kwargs: dict[str, Any] = {"scheduler": target}
        if workers:
            kwargs["num_workers"] = int(workers)
        show = progress is not False and progress is not None and hasattr(progress, "update")
        with _TqdmCallback(progress_prefix, progress) if show else nullcontext():
            return dask.compute(obj, **kwargs)[0]
    timeout = resolve_cluster_timeout(cluster_timeout)
    ctx: Any = _connect(target) if isinstance(target, str) else nullcontext(target)
    with ctx as client:
        address = _address(client, target if isinstance(target, str) else None)
        if client.status != "running":
            raise _lost(address, client.status)
        try:
            future = client.compute(obj)
        except Exception:
            if client.status != "running":
                raise _lost(address, client.status) from None
            raise
        bar = _progress(future, address) if progress else None
        result = _watch(future, client, timeout, address)
        if bar is not None:
            bar.join(timeout=5)  # let the bar draw its last line
        return result
