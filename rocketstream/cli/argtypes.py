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


def add_fill_missing(parser: argparse.ArgumentParser) -> None:
    """``--fill-missing-chunks``: read absent input chunks as the fill value (Zarr's default) instead of
    refusing them."""
    parser.add_argument("--fill-missing-chunks", dest="fill_missing", action="store_true",
                        help="read chunks absent from a Zarr input as its fill value (for arrays written "
                        "with empty chunks skipped); by default an absent chunk is an error")
