"""``rocketstream predict`` and ``rocketstream evaluate``: predictions into a resumable Zarr store, and
scores against labels."""

from __future__ import annotations

import argparse
import json
import time

from .options import (
    LABELS_HELP,
    add_chunked_output,
    add_fill_missing,
    add_input,
    add_stream,
    check_stream,
    progress_of,
)


def register_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="transform + head per chunk into a predictions Zarr store",
                       description="Transform INPUT with the model and apply the head chunk by chunk (one "
                       "Dask task per sample chunk), writing label and proba/decision (classification) or "
                       "value (regression) to a Zarr store with done markers; --resume finishes an "
                       "interrupted run, --append grows the store with its input, --follow keeps scoring the "
                       "input's series as they arrive.")
    add_input(p)
    p.add_argument("--head", required=True, metavar="HEAD.npz", help="head file from `rocketstream train`")
    add_chunked_output(p, "PRED.zarr", "predictions store", budget=False,
                       resume="compute only chunks not yet done (the same model, head and input; the "
                       "chunks done are first re-hashed and torn ones recomputed)")
    add_stream(p, "score")
    p.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    check_stream(args)
    if args.follow:
        from ..api.follow import follow_predict

        report = follow_predict(args.input, args.model, args.head, args.output, append=args.append,
                                until=args.until, poll=args.poll, variable=args.variable,
                                chunk_size=args.chunk_size, overwrite=args.overwrite, device=args.device,
                                scheduler=args.scheduler, verify=args.verify)
        print(report.line("predict"), flush=True)
        return 0
    from ..api.predict import predict
    from ..storage.locations import redact

    t0 = time.perf_counter()
    group = predict(args.input, args.model, args.head, args.output, variable=args.variable,
                    chunk_size=args.chunk_size, overwrite=args.overwrite, resume=args.resume,
                    scheduler=args.scheduler, device=args.device, progress=progress_of(args),
                    fill_missing=args.fill_missing, verify=args.verify, append=args.append)
    meta = dict(group.attrs)["rocketstream"]
    dt = time.perf_counter() - t0
    what = (f"{len(meta['classes'])} classes" if meta["task"] == "classification" else "regression")
    print(f"predicted {meta['n_samples']} series ({what}, {meta['head']['kind']} head) in {dt:.1f} s "
          f"({meta['n_samples'] / max(dt, 1e-9):.0f} series/s) -> {redact(args.output)}")
    return 0


def register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a predictions store against labels",
                       description="Print accuracy and the confusion matrix (classification) or RMSE, MAE "
                       "and R^2 (regression) of PRED.zarr against the true labels.")
    p.add_argument("predictions", metavar="PRED.zarr", help="predictions store from `rocketstream predict`")
    p.add_argument("--labels", metavar="SPEC", default=None,
                   help=LABELS_HELP + " (default: the 'label' coordinate of the predicted input, which the "
                   "predictions store carries)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_fill_missing(p, "labels")
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..api.predict import evaluate

    metrics = evaluate(args.predictions, args.labels, verbose=not args.json, fill_missing=args.fill_missing)
    if args.json:
        print(json.dumps(metrics, indent=1))
    return 0


REGISTER = [register_predict, register_evaluate]
