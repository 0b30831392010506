"""Option builders shared by the commands, so that the same option reads the same everywhere."""

from __future__ import annotations

import argparse
import sys

from .argtypes import memory, positive_float, positive_int

INPUT_HELP = ("input: a Zarr store path or fsspec URL (array, or group with --variable), or a .npy file; "
              "shape (sample, channel, time)")
LABELS_HELP = ("labels: STORE.zarr:NAME (an array or coordinate in a Zarr group, e.g. data.zarr:label), "
               "a Zarr group holding 'label', or a .npy file")


def add_input(p: argparse.ArgumentParser) -> None:
    """INPUT, ``--variable`` and ``--fill-missing-chunks``."""
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument("--variable", metavar="NAME", help="array name inside a Zarr group")
    add_fill_missing(p)


def add_fill_missing(p: argparse.ArgumentParser, what: str = "input") -> None:
    """``--fill-missing-chunks``: read absent chunks of a Zarr ``what`` as the fill value (Zarr's
    default) instead of refusing them."""
    p.add_argument("--fill-missing-chunks", dest="fill_missing", action="store_true",
                   help=f"read chunks absent from a Zarr {what} array as its fill value (for arrays written "
                   "with empty chunks skipped, Zarr's default); by default an absent chunk is an error")


def add_chunked_output(p: argparse.ArgumentParser, metavar: str, what: str, resume: str, *,
                       workers: bool = False, budget: bool = True) -> None:
    """``--model`` and the resumable store a chunk job writes: ``--output``, the run options
    (:func:`add_run`) and ``--overwrite`` / ``--resume`` / ``--no-verify``."""
    p.add_argument("--model", required=True, metavar="M.json", help="model file from `rocketstream fit`")
    p.add_argument("--output", required=True, metavar=metavar, help=f"{what} to write")
    add_run(p, workers=workers, budget=budget)
    add_replace(p, resume=resume)


def add_run(p: argparse.ArgumentParser, *, workers: bool = False, budget: bool = True) -> None:
    """Where and how the chunk tasks run: ``--scheduler``, ``--device``, ``--chunk-size``,
    ``--memory-budget``, ``--progress`` (and ``--workers`` for local schedulers)."""
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|threads|processes|synchronous",
                   help="Dask scheduler: a dask.distributed address (tcp://host:8786) or a local one "
                   "(default threads)")
    if workers:
        p.add_argument("--workers", type=positive_int, default=None, help="local scheduler workers")
    p.add_argument("--device", default=None,
                   help="torch device (default: the worker's GPU if it has one, else its CPU)")
    p.add_argument("--chunk-size", type=positive_int, default=None, metavar="N", help="samples per task")
    if budget:
        p.add_argument("--memory-budget", type=memory, default=None, metavar="BYTES",
                       help="per-task micro-batch memory for the core transform, e.g. 256MB")
    add_progress(p)


def add_progress(p: argparse.ArgumentParser, what: str = "show a progress bar") -> None:
    """``--progress`` / ``--no-progress`` (read with :func:`progress_of`): by default on when stderr is a
    terminal, so that logs and pipes get no bar."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{what} on stderr (default: when stderr is a terminal)")


def add_replace(p: argparse.ArgumentParser, *, resume: str | None = None) -> None:
    """``--overwrite``, and ``--resume`` / ``--no-verify`` where the output can be finished."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (only one rocketstream made, of the same kind)")
    if resume:
        p.add_argument("--resume", action="store_true", help=resume)
        p.add_argument("--no-verify", dest="verify", action="store_false",
                       help="with --resume, --append or --follow: trust the done markers without re-reading "
                       "what they mark (--append still checks the rows of the partly filled last chunk)")


def add_stream(p: argparse.ArgumentParser, what: str) -> None:
    """``--append``, ``--follow``, ``--until N`` and ``--poll SECONDS`` (checked with
    :func:`check_stream`)."""
    p.add_argument("--append", action="store_true",
                   help="the input grew along samples: grow OUTPUT with it, computing only the new rows "
                   "(the old rows must be unchanged: their digests are checked); makes OUTPUT if absent")
    p.add_argument("--follow", action="store_true",
                   help=f"keep running: {what} the input's chunks as they land (with --append, its new rows "
                   "too) until --until N samples are done or SIGINT/SIGTERM (the current batch is "
                   "finished, exit 0); continues an existing OUTPUT")
    p.add_argument("--until", type=positive_int, default=None, metavar="N",
                   help="with --follow: stop once N samples are done")
    p.add_argument("--poll", type=positive_float, default=None, metavar="SECONDS",
                   help="with --follow: seconds between looks at the input (default 1)")


def check_stream(args: argparse.Namespace) -> None:
    """Refuse ``--until`` / ``--poll`` without ``--follow``, and ``--append`` / ``--follow`` with
    ``--overwrite`` or ``--fill-missing-chunks`` where they cannot work (one line, exit 2).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a command with :func:`add_stream`.

    Raises
    ------
    UsageError
        A combination that cannot work.
    """
    from ..errors import UsageError

    if not args.follow and (args.until is not None or args.poll is not None):
        raise UsageError("--until and --poll apply to --follow; add --follow")
    args.poll = 1.0 if args.poll is None else args.poll
    if args.append and args.overwrite:
        raise UsageError("--append and --overwrite exclude each other: --append grows OUTPUT, --overwrite "
                         "replaces it; pass only one")
    if args.follow and args.fill_missing:
        raise UsageError("--fill-missing-chunks cannot be used with --follow: while following, an absent "
                         "chunk is one not written yet")


def progress_of(args: argparse.Namespace) -> bool:
    """``--progress`` / ``--no-progress``, by default on when stderr is a terminal.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments with ``progress`` (True, False or None).

    Returns
    -------
    bool
    """
    if args.progress is not None:
        return bool(args.progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # stderr replaced or closed
        return False
