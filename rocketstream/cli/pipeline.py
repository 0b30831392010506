"""``rocketstream fit`` and ``rocketstream transform``: the out-of-core pipeline from the shell."""

from __future__ import annotations

import argparse
import sys
import time

from .argtypes import add_fill_missing, positive_int, seed
from .errors import UsageError

_INPUT_HELP = ("input: a Zarr store path or fsspec URL (array, or group with --variable), "
               "or a .npy file; shape (sample, channel, time)")


def _memory(text: str) -> int:
    """Parse '256MB', '2GiB', '1000000' into bytes."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    t = text.strip().upper()
    num = t.rstrip("KMGIB")
    unit = t[len(num):]
    try:
        value = float(num) * units[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 256MB, 2GiB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"memory size must be positive, got {text!r}")
    return int(value)


def register_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit MiniRocket on a Zarr array, reading only the drawn rows",
                       description="Fit MiniRocket parameters: draw the fit rows (seeded), read only those "
                       "from INPUT, fit the biases and write the model as JSON.")
    p.add_argument("input", metavar="INPUT", help=_INPUT_HELP)
    p.add_argument("--model", required=True, metavar="OUT.json", help="model file to write (JSON)")
    p.add_argument("--variable", metavar="NAME", help="array name inside a Zarr group")
    p.add_argument("--seed", type=seed, default=None, help="random seed (default: drawn and recorded)")
    p.add_argument("--num-features", type=positive_int, default=10_000, help="features (default 10000)")
    p.add_argument("--pad-short", action="store_true",
                   help="unequal-length data: zero-pad series shorter than 9 points up to 9")
    p.add_argument("--max-dilations", type=positive_int, default=32,
                   help="max dilations per kernel (default 32)")
    p.add_argument("--device", default=None,
                   help="torch device for the bias fit, e.g. cpu or cuda (default cpu)")
    p.add_argument("--memory-budget", type=_memory, default=None, metavar="BYTES",
                   help="memory for the drawn rows and micro-batches, e.g. 512MB")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    add_fill_missing(p)
    p.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from ..api.outofcore import fit
    from ..core.serialization import dumps
    from ..errors import PreflightError
    from ..graph.preflight import device_problem
    from ..storage.locations import check_outputs, resolve
    from ..storage.outputs import existing_output, write_file

    out = resolve(args.model)
    check_outputs([("model file", out)], [("input", resolve(args.input))])
    if existing_output(out, "model") and not args.overwrite:
        raise UsageError(f"model file {out} already exists; pass --overwrite to replace it")
    problem = device_problem(args.device)
    if problem:
        raise PreflightError(f"device {args.device} cannot be used here: {problem}; pass --device cpu or "
                             "leave it out")
    t0 = time.perf_counter()
    params = fit(args.input, variable=args.variable, num_features=args.num_features,
                 max_dilations_per_kernel=args.max_dilations, random_state=args.seed, device=args.device,
                 memory_budget=args.memory_budget, pad_short=args.pad_short, fill_missing=args.fill_missing)
    write_file(out, lambda fh: fh.write(dumps(params).encode()), "model", overwrite=args.overwrite)
    print(f"fitted {params.n_features_out} features on {params.n_fit_examples} x {params.n_channels} x "
          f"{params.length} (seed {params.seed}, {params.extra.get('fit_rows_distinct')} rows read) in "
          f"{time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def register_transform(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transform", help="transform a Zarr array into a resumable features store",
                       description="Transform INPUT chunk by chunk into a Zarr features store (sample, "
                       "feature) with done markers; --resume finishes an interrupted run.")
    p.add_argument("input", metavar="INPUT", help=_INPUT_HELP)
    p.add_argument("--model", required=True, metavar="M.json", help="model file from `rocketstream fit`")
    p.add_argument("--output", required=True, metavar="OUT.zarr", help="features store to write")
    p.add_argument("--variable", metavar="NAME", help="array name inside a Zarr group")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|threads|processes|synchronous",
                   help="Dask scheduler: a dask.distributed address (tcp://host:8786) or a local one "
                   "(default threads)")
    p.add_argument("--workers", type=positive_int, default=None, help="local scheduler workers")
    p.add_argument("--resume", action="store_true", help="compute only chunks not yet done (the ones "
                   "marked done are first re-hashed against their sha256; torn ones are recomputed)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="with --resume: trust the done markers without re-reading the blocks")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--device", default=None, help="torch device (default: the worker's GPU if any, else CPU)")
    p.add_argument("--chunk-size", type=positive_int, default=None, metavar="N", help="samples per task")
    p.add_argument("--memory-budget", type=_memory, default=None, metavar="BYTES",
                   help="per-task micro-batch memory for the core transform, e.g. 256MB")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    add_fill_missing(p)
    p.set_defaults(handler=run_transform)


def run_transform(args: argparse.Namespace) -> int:
    from ..api.outofcore import run_transform as transform
    from ..core import load
    from ..storage.locations import check_outputs, resolve

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass only one")
    output = resolve(args.output)
    check_outputs([("output", output)], [("model file", resolve(args.model))])
    params = load(args.model)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    store, computed = transform(args.input, params, args.output, variable=args.variable,
                                chunk_size=args.chunk_size, resume=args.resume, overwrite=args.overwrite,
                                device=args.device, memory_budget=args.memory_budget,
                                scheduler=args.scheduler, workers=args.workers, progress=progress,
                                verify=args.verify, fill_missing=args.fill_missing)
    print(f"wrote {store.n_samples} x {store.n_features} features to {output}: {len(computed)} of "
          f"{store.n_chunks} chunks computed in {time.perf_counter() - t0:.1f} s")
    return 0


REGISTER = [register_fit, register_transform]
