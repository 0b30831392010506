"""argparse value types shared by the commands: bad values are usage errors (exit 2, one line)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer between 0 and 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32 - 1, got {value}")
    return value


def add_fill_missing(parser: argparse.ArgumentParser, what: str = "input") -> None:
    """``--fill-missing-chunks``: read absent chunks of a Zarr ``what`` as the fill value (Zarr's
    default) instead of refusing them."""
    parser.add_argument("--fill-missing-chunks", dest="fill_missing", action="store_true",
                        help=f"read chunks absent from a Zarr {what} array as its fill value (for arrays "
                        "written with empty chunks skipped, Zarr's default); by default an absent chunk is "
                        "an error")
