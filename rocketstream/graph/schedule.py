"""Run a Dask collection on the scheduler the user names, with an optional progress bar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import dask
from dask.callbacks import Callback

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
    """A tqdm bar counting chunks (for local schedulers)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk")


def _existing_client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def resolve_scheduler(scheduler: Any) -> tuple[str, Any]:
    """Return ``("distributed", client_or_address)`` or ``("local", name)``."""
    if scheduler is None:
        client = _existing_client()
        return ("distributed", client) if client is not None else ("local", "threads")
    if isinstance(scheduler, str):
        if scheduler in LOCAL_SCHEDULERS:
            return "local", scheduler
        if "://" in scheduler or _ADDRESS.match(scheduler):
            return "distributed", scheduler
        raise ValueError(f"unknown scheduler {scheduler!r}: use threads, processes, synchronous, or a "
                         "dask.distributed address such as tcp://host:8786")
    if type(scheduler).__name__ == "Client":
        return "distributed", scheduler
    raise TypeError("scheduler must be a name, an address or a distributed.Client, got "
                    f"{type(scheduler).__name__}")


def is_local(scheduler: Any) -> bool:
    return resolve_scheduler(scheduler)[0] == "local"


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot connect to the Dask scheduler at {address} ({exc}); check the address, "
                         "or start one with `dask scheduler`") from None


@contextmanager
def session(scheduler: Any) -> Iterator[Any]:
    """Connect once to a scheduler address for several computes; other schedulers pass through."""
    kind, target = resolve_scheduler(scheduler)
    if kind == "distributed" and isinstance(target, str):
        with _connect(target) as client:
            yield client
    else:
        yield scheduler


def compute(obj: Any, scheduler: Any = None, workers: int | None = None, progress: Any = False,
            progress_prefix: str = "") -> Any:
    """Compute ``obj`` on ``scheduler`` (None: the current distributed client, else threads).

    ``progress``: for local schedulers a tqdm bar advanced per task named ``progress_prefix...``;
    for distributed ones any true value shows ``distributed.progress``.
    """
    kind, target = resolve_scheduler(scheduler)
    if kind == "local":
        kwargs: dict[str, Any] = {"scheduler": target}
        if workers:
            kwargs["num_workers"] = int(workers)
        show = progress is not False and progress is not None and hasattr(progress, "update")
        with _TqdmCallback(progress_prefix, progress) if show else nullcontext():
            return dask.compute(obj, **kwargs)[0]
    from distributed import progress as dprogress

    ctx: Any = _connect(target) if isinstance(target, str) else nullcontext(target)
    with ctx as client:
        future = client.compute(obj)
        if progress:
            dprogress(future)
        return future.result()
