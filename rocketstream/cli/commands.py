"""The command registry: each entry adds one subcommand (with ``handler``) to the parser."""

from __future__ import annotations

import argparse
import json

from . import demo, heads, ingest, pipeline


def _info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a model file or a features store",
                       description="Print the parameters and provenance of a model file (JSON), or "
                       "the shape, progress (chunks done) and model of a features store (Zarr).")
    p.add_argument("path", help="model .json file or features .zarr store")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="features store: trust the done markers instead of reading every chunk and "
                   "checking its sha256")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..core import load

    if Path(args.path).is_dir() or "://" in args.path:
        from ..api.outofcore import features_info

        return _print(features_info(args.path, verify=args.verify), args.json)
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
    return _print(info, args.json)


def _print(info: dict, as_json: bool) -> int:
    from ..storage.locations import redact

    if as_json:
        print(redact(json.dumps(info, indent=1)))
    else:
        for k, v in info.items():
            print(redact(f"{k:>22}: {v}"))
    return 0


REGISTRY = [_info, demo.register, ingest.register, *pipeline.REGISTER, *heads.REGISTER]
