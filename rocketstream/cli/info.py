"""``rocketstream info``: describe a model file or a features store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a model file or a features store",
                       description="Print the parameters and provenance of a model file (JSON), or "
                       "the shape, progress (chunks done, each checked against its sha256), model and "
                       "history (how many rows were added when) of a features store (Zarr).")
    p.add_argument("path", help="model .json file or features .zarr store")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="features store: trust the done markers instead of reading every chunk and "
                   "checking its sha256")
    p.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from ..storage.locations import redact

    if Path(args.path).expanduser().is_dir() or "://" in args.path:
        from ..api.features import features_info

        info = features_info(args.path, verify=args.verify)
    else:
        from ..api.models import model_info

        info = model_info(args.path)
    if args.json:
        print(redact(json.dumps(info, indent=1)))
    else:
        for k, v in info.items():
            if k == "history":
                for i, entry in enumerate(v):
                    lead = f"{'history':>22}:" if i == 0 else " " * 23
                    what = "created with" if i == 0 else "appended"
                    print(f"{lead} {entry.get('time')} {what} {entry.get('added')} rows "
                          f"({entry.get('n_samples')} in all)")
                continue
            print(redact(f"{k:>22}: {v}"))
    return 0


REGISTER = [register]
