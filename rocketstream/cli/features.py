"""``rocketstream fit`` and ``rocketstream transform``: a model from the drawn rows, and a resumable
features store."""

from __future__ import annotations

import argparse
import time

from .argtypes import memory, positive_int, seed
from .options import add_chunked_output, add_input, add_stream, check_stream, progress_of


def register_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit MiniRocket on a Zarr array, reading only the drawn rows",
                       description="Fit MiniRocket parameters: draw the fit rows (seeded), read only those "
                       "from INPUT, fit the biases and write the model as JSON.")
    add_input(p)
    p.add_argument("--model", required=True, metavar="OUT.json", help="model file to write (JSON)")
    p.add_argument("--seed", type=seed, default=None, help="random seed (default: drawn and recorded)")
    p.add_argument("--num-features", type=positive_int, default=10_000, help="features (default 10000)")
    p.add_argument("--pad-short", action="store_true",
                   help="unequal-length data: zero-pad series shorter than 9 points up to 9")
    p.add_argument("--max-dilations", type=positive_int, default=32,
                   help="max dilations per kernel (default 32)")
    p.add_argument("--device", default=None,
                   help="torch device for the bias fit (default: the GPU if there is one, else the CPU)")
    p.add_argument("--memory-budget", type=memory, default=None, metavar="BYTES",
                   help="memory for the drawn rows and micro-batches, e.g. 512MB")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|threads|processes|synchronous",
                   help="Dask scheduler that reads the drawn rows (one task per input chunk holding some): "
                   "a dask.distributed address (tcp://host:8786) or a local one (default threads); the "
                   "biases are fitted here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.set_defaults(handler=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    from ..api.models import check_model_output, save_model
    from ..api.outofcore import fit

    out = check_model_output(args.model, overwrite=args.overwrite, inputs=[args.input])
    t0 = time.perf_counter()
    params = fit(args.input, variable=args.variable, num_features=args.num_features,
                 max_dilations_per_kernel=args.max_dilations, random_state=args.seed, device=args.device,
                 memory_budget=args.memory_budget, pad_short=args.pad_short, fill_missing=args.fill_missing,
                 scheduler=args.scheduler)
    save_model(params, out, overwrite=args.overwrite, inputs=[args.input])
    print(f"fitted {params.n_features_out} features on {params.n_fit_examples} x {params.n_channels} x "
          f"{params.length} (seed {params.seed}, {params.extra.get('fit_rows_distinct')} rows read) in "
          f"{time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def register_transform(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transform", help="transform a Zarr array into a resumable features store",
                       description="Transform INPUT chunk by chunk into a Zarr features store (sample, "
                       "feature) with done markers; --resume finishes an interrupted run, --append grows the "
                       "store with its input, --follow keeps transforming the input as it is written.")
    add_input(p)
    add_chunked_output(p, "OUT.zarr", "features store", workers=True,
                       resume="compute only chunks not yet done (the ones marked done are first re-hashed "
                       "against their sha256 and their input rows checked; torn ones are recomputed)")
    add_stream(p, "transform")
    p.set_defaults(handler=cmd_transform)


def cmd_transform(args: argparse.Namespace) -> int:
    check_stream(args)
    if args.follow:
        from ..api.follow import follow_transform

        report = follow_transform(args.input, args.model, args.output, append=args.append, until=args.until,
                                  poll=args.poll, variable=args.variable, chunk_size=args.chunk_size,
                                  overwrite=args.overwrite, device=args.device,
                                  memory_budget=args.memory_budget, scheduler=args.scheduler,
                                  workers=args.workers, verify=args.verify)
        print(report.line("transform"), flush=True)
        return 0
    from ..api.outofcore import run_transform

    t0 = time.perf_counter()
    store, computed = run_transform(args.input, args.model, args.output, variable=args.variable,
                                    chunk_size=args.chunk_size, resume=args.resume, overwrite=args.overwrite,
                                    device=args.device, memory_budget=args.memory_budget,
                                    scheduler=args.scheduler, workers=args.workers,
                                    progress=progress_of(args), verify=args.verify,
                                    fill_missing=args.fill_missing, append=args.append)
    print(f"wrote {store.n_samples} x {store.n_features} features to {store.display}: {len(computed)} of "
          f"{store.n_chunks} chunks computed in {time.perf_counter() - t0:.1f} s")
    return 0


REGISTER = [register_fit, register_transform]
