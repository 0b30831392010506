"""The command registry: each entry adds one subcommand (with ``handler``) to the parser."""

from __future__ import annotations

import argparse
import json

from . import demo


def _info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a model file or a features store",
                       description="Print the parameters and provenance of a model file (JSON).")
    p.add_argument("path", help="model .json file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from ..core import load

    params = load(args.path)
    info = {
        "n_channels": params.n_channels,
        "length": params.length,
        "n_features": params.n_features_out,
        "dilations": params.dilations.tolist(),
        "features_per_dilation": params.features_per_dilation.tolist(),
        "seed": params.seed,
        "n_fit_examples": params.n_fit_examples,
        **params.extra,
    }
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        for k, v in info.items():
            print(f"{k:>22}: {v}")
    return 0


REGISTRY = [_info, demo.register]
