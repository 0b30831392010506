"""Entry point: builds the argument parser from the command modules and maps errors to exit 2."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from . import commands
from .errors import user_errors


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        from ..storage.locations import redact

        self.exit(2, f"{self.prog}: error: {redact(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rocketstream",
        description="Out-of-core MiniRocket: fit, transform, train and predict on Zarr time series.",
    )
    parser.add_argument("--version", action="version", version=f"rocketstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in commands.REGISTRY:
        register(sub)
    parser.set_defaults(subcommands=sub.choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input or usage).

    A failure prints exactly one line on stderr; warnings raised during a command are printed (one
    line each) only when it succeeds, so they never bury the error.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's own parser: its name and its --help
        parser_of = args.subcommands.get(args.command, parser) if args.command else parser
        parser_of.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings(record=True) as caught:  # shown after success, as one line each
            code = int(args.handler(args) or 0)
        for w in caught:
            text = str(w.message).strip().splitlines()
            print(f"rocketstream {args.command}: warning: {text[0] if text else w.category.__name__}",
                  file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("rocketstream: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        from ..storage.locations import redact

        print(f"rocketstream {args.command}: error: {redact(msg)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
