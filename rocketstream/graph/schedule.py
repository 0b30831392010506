"""Run a Dask collection on the scheduler the user names, with an optional progress bar."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any

import dask
from dask.base import named_schedulers
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


def _screen() -> dict[str, int]:
    """tqdm's size options for stderr: none on a terminal that reports its size; a default size on one
    that reports 0 rows or columns (a fresh pseudo-terminal does), where tqdm would draw nothing."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # not a terminal, or stderr replaced
        return {}
    if size.columns > 0 and size.lines > 0:
        return {}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}


def progress_bar(total: int | None, desc: str = "transform", unit: str = "chunk") -> Any:
    """A tqdm bar on stderr (for every scheduler and for ingest).

    Parameters
    ----------
    total : int or None
        Steps to count (None: not yet known).
    desc : str, default "transform"
        The bar's label.
    unit : str, default "chunk"
        What a step is.

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, **_screen())


def _existing_client() -> Any:
    if "distributed" not in sys.modules:  # a client can only exist once distributed is imported
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def dask_scheduler(scheduler: Any = None) -> Any:
    """``scheduler=`` for ``dask.compute``: a local scheduler's name as its get function; None as
    dask's own default (threads for arrays and delayed objects, unless a client can exist or a
    scheduler is configured: then None, dask chooses); anything else as given.

    Given a name, or nothing, dask imports distributed to look for a client first: about 0.4 s, more
    than a small job computes. Here that happens only when a client can exist (distributed loaded).

    Parameters
    ----------
    scheduler : str, distributed.Client, callable or None

    Returns
    -------
    Any
    """
    if scheduler is None:
        if "distributed" in sys.modules or dask.config.get("scheduler", None) or \
                dask.config.get("scheduler-address", None):
            return None
        scheduler = "threads"
    if isinstance(scheduler, str):
        return named_schedulers.get(scheduler.lower(), scheduler)
    return scheduler


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


def local_workers(workers: int | None = None) -> int:
    """Workers a local scheduler runs with: ``workers``, else Dask's ``num_workers`` setting, else every
    core this process may use (``dask.system.CPU_COUNT``: CPU affinity and cgroup limits counted), as
    Dask's threaded and process schedulers do by default.

    Parameters
    ----------
    workers : int, optional
        The count asked for.

    Returns
    -------
    int
        At least 1.
    """
    if workers:
        return max(1, int(workers))
    configured = dask.config.get("num_workers", None)
    if configured:
        return max(1, int(configured))
    from dask.system import CPU_COUNT

    return max(1, int(CPU_COUNT))


def task_slots(target: Any, workers: int | None = None, device: Any = None) -> int:
    """Tasks worth running at once where ``target`` runs them: on the CPU every worker thread (the
    threads of all a distributed client's workers, else :func:`local_workers`: ``workers``, the
    setting, or every core here); on a CUDA ``device`` every process, as its threads share one GPU
    (1 here, the workers of a cluster).

    Parameters
    ----------
    target : Any
        What :func:`session` yields (a local scheduler name or a client).
    workers : int, optional
        Workers of a local scheduler.
    device : str or torch.device, optional
        The device asked for (None: each worker's own; here, CUDA where this machine has it).

    Returns
    -------
    int
        At least 1.
    """
    from ..config import resolve_device_type

    try:
        gpu = resolve_device_type(device) == "cuda"
    except (RuntimeError, ValueError, TypeError):  # not a device: the preflight that follows says so
        gpu = False
    kind, client = resolve_scheduler(target)
    if kind == "distributed" and not isinstance(client, str):
        info = client.scheduler_info(n_workers=-1).get("workers", {})
        if device is not None and gpu:
            return max(1, len(info))
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))
    return 1 if gpu else local_workers(workers)


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


#: seconds a refused tcp:// address is retried (a scheduler just starting) before the run gives up
REFUSED_GRACE = 3.0


def _refused(address: str, grace: float = REFUSED_GRACE) -> OSError | None:
    """The error of a ``tcp://`` address that refuses connections for ``grace`` seconds: nothing listens
    there. None when something answers, or when the address is of another kind or the host cannot be
    reached (then the client's own timeout applies)."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        return None
    if scheme != "tcp":
        return None
    deadline = time.monotonic() + grace
    while True:
        try:
            with socket.create_connection((host, port), timeout=grace):
                return None
        except ConnectionRefusedError as exc:
            if time.monotonic() >= deadline:
                return exc
            time.sleep(0.25)
        except OSError:
            return None


def _connect(address: str) -> Any:
    from distributed import Client

    refused = _refused(address)
    if refused is not None:  # fail now, not after the client's 20 s of retries
        raise PreflightError(f"cannot connect to the Dask scheduler at {address} (nothing listens there: "
                             f"{refused}); check the address, or start one with `dask scheduler`")
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


def _bar_name(prefix: str) -> str:
    """The job name in a chunk task prefix ``rocketstream-write-{name}-{token}`` (else "tasks")."""
    match = re.match(r"rocketstream-write-(\w+)-", prefix)
    return match.group(1) if match else "tasks"


def _key_name(key: Any) -> Any:
    return key[0] if isinstance(key, tuple) else key


def _n_tasks(obj: Any, prefix: str) -> int | None:
    """Tasks of ``obj``'s graph whose key names start with ``prefix`` (None if the graph cannot say)."""
    try:
        keys = obj.__dask_graph__().keys()
        return sum(1 for key in keys if str(_key_name(key)).startswith(prefix))
    except Exception:
        return None


def _progress(future: Any, address: str, prefix: str, bar: Any) -> threading.Thread:
    """Advance ``bar`` (a tqdm bar) from a thread as the scheduler finishes the tasks of ``future``
    whose key names start with ``prefix``, as ``distributed.progress`` learns it: from a progress plugin
    on the scheduler. The bar counts chunks like the local one, and draws on stderr (as every bar of
    rocketstream does; ``distributed.progress`` draws on stdout, mixed with the command's output).

    The grouping function runs on the scheduler: it is a closure, pickled by value, so the scheduler
    needs nothing of rocketstream."""
    from distributed.diagnostics.progressbar import MultiProgressBar
    from distributed.utils import LoopRunner

    def group(key: Any) -> str:  # on the scheduler
        name = key[0] if isinstance(key, tuple) else key
        return "chunks" if isinstance(name, str) and name.startswith(prefix) else "other"

    class ChunkBar(MultiProgressBar):
        counted = 0

        def _draw_bar(self, remaining: dict, all: dict, **kwargs: Any) -> None:  # noqa: A002 (distributed's name)
            done = int(all.get("chunks", 0)) - int(remaining.get("chunks", 0))
            bar.update(max(0, done - self.counted))
            self.counted = max(done, self.counted)

    def show() -> None:
        try:
            watcher = ChunkBar([future], address, group_by=group, interval="100ms", complete=True)
            LoopRunner().run_sync(watcher.listen)
        except Exception as exc:  # a display problem must not stop the run
            log.debug("progress display failed: %s", exc)

    thread = threading.Thread(target=show, name="rocketstream-progress", daemon=True)
    thread.start()
    return thread


def compute(obj: Any, scheduler: Any = None, workers: int | None = None, progress: Any = False,
            progress_prefix: str = "", *, cluster_timeout: float | None = None) -> Any:
    """Compute ``obj`` on ``scheduler`` (None: the current distributed client, else threads).

    ``progress``: a tqdm bar advanced per finished task named ``progress_prefix...``; on a distributed
    scheduler any other true value makes such a bar (see :func:`progress_bar`), closed at the end.
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
        A tqdm bar, or (distributed) a true value.
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
        kwargs: dict[str, Any] = {"scheduler": dask_scheduler(target)}
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
        own = progress is not None and progress is not False and not hasattr(progress, "update")
        bar = progress_bar(_n_tasks(obj, progress_prefix), _bar_name(progress_prefix)) if own else progress
        shown = None
        if bar is not None and bar is not False:
            shown = _progress(future, address, progress_prefix, bar)
        try:
            result = _watch(future, client, timeout, address)
            if shown is not None:
                shown.join(timeout=5)  # the plugin's last report
            if own and bar.total:  # every task is done: the bar ends full whatever the plugin reported
                bar.update(bar.total - bar.n)
        finally:
            if own:
                bar.close()
        return result
