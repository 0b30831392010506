"""``rocketstream train``: a ridge or softmax head from a features store, out of core."""

from __future__ import annotations

import argparse
import time

from .argtypes import fraction, positive_float, positive_int, seed
from .options import LABELS_HELP, add_fill_missing, progress_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a ridge or softmax head from a features store, out of core",
                       description="Train a head on FEATURES (a features store from `rocketstream "
                       "transform`, or a .npy (n, features) array), streaming row chunks: exact ridge with "
                       "leave-one-out alpha, or a softmax/linear head with checkpoints.")
    p.add_argument("features", metavar="FEATURES", help="features store (.zarr) or .npy array")
    p.add_argument("--labels", metavar="SPEC", default=None,
                   help=LABELS_HELP + " (default: the features store's own 'label' coordinate)")
    p.add_argument("--head", choices=("auto", "ridge", "softmax"), default="auto",
                   help="head kind (default auto: ridge below 10,000 training series, as the MiniRocket "
                   "authors advise, softmax from there unless ridge stays cheap; one line says which)")
    p.add_argument("--output", required=True, metavar="HEAD.npz", help="head file to write")
    p.add_argument("--task", choices=("classification", "regression"), default=None,
                   help="default: the task recorded with the data by `rocketstream ingest`, else regression "
                   "for real-valued targets and classification otherwise (one line says which)")
    p.add_argument("--epochs", type=positive_int, default=50, help="softmax: epochs (default 50)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="softmax: minibatch (default auto: 32..256, at least 64 steps an epoch)")
    p.add_argument("--lr", type=positive_float, default=1e-4, help="softmax: Adam learning rate (1e-4)")
    p.add_argument("--seed", type=seed, default=0, help="softmax: shuffling/split seed (default 0)")
    p.add_argument("--validation-fraction", type=fraction, default=None,
                   help="softmax: held-out fraction for the schedule and early stopping (default auto: "
                   "10%% up to 2,048 rows when that is at least 1,000 rows, else none and all epochs run; "
                   "0: none)")
    p.add_argument("--checkpoint-dir", metavar="DIR", default=None,
                   help="softmax: checkpoints, metrics.json and training_curve.png "
                   "(default: HEAD_checkpoint/ beside --output)")
    p.add_argument("--device", default=None,
                   help="softmax: torch device (default: the GPU if there is one, else the CPU)")
    p.add_argument("--resume", action="store_true", help="softmax: continue from the checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing head / checkpoint")
    p.add_argument("--update", action="store_true",
                   help="fold the rows appended to FEATURES since --output learned into it: ridge from the "
                   "statistics kept beside the head (equal to training on all rows), softmax by continuing "
                   "its checkpoint on the new rows for --epochs epochs; --head names the kind the file holds")
    p.add_argument("--keep-alpha", action="store_true",
                   help="ridge --update: keep alpha and read only the new rows (default: choose alpha again "
                   "by leave-one-out, one more pass over all rows)")
    p.add_argument("--no-stats", dest="keep_stats", action="store_false",
                   help="ridge: do not keep the statistics --update needs beside the head (HEAD.stats.npz, "
                   "about 4 F^2 bytes: 400 MB at 10,000 features); an old one is removed (refused with "
                   "--head softmax)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="softmax: show a progress bar (default: when stderr is a terminal)")
    add_fill_missing(p, "labels")
    p.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from ..api.train import head_path, train_head

    t0 = time.perf_counter()
    head = train_head(args.features, args.labels, head=args.head, task=args.task, output=args.output,
                      overwrite=args.overwrite, resume=args.resume, checkpoint_dir=args.checkpoint_dir,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      validation_fraction=args.validation_fraction, device=args.device,
                      progress=progress_of(args), fill_missing=args.fill_missing,
                      verbose=True, update=args.update, reselect_alpha=not args.keep_alpha,
                      keep_stats=args.keep_stats)
    if args.update and not head.rows_added_:
        print(f"nothing to update: {head_path(args.output)} has learned from every row of {args.features}")
        return 0
    info = head.info()
    if head.kind == "ridge":
        detail = f"alpha {info['alpha']:.4g} ({'kept' if args.keep_alpha else 'leave-one-out'})"
    else:
        hist = head.history_
        val = [v for v in hist.get("val_accuracy", []) if v is not None]
        detail = (f"{len(hist.get('epoch', []))} epochs, best epoch {info['best_epoch']}"
                  + (f", validation accuracy {val[-1]:.3f}" if val else "")
                  + f"; metrics in {head.checkpoint_dir}")
    done = (f"updated a {head.kind} {head.task} head with {head.rows_added_} new rows, now" if args.update
            else f"trained a {head.kind} {head.task} head on")
    print(f"{done} {head.n_samples_} x {head.n_features_in_} features in "
          f"{time.perf_counter() - t0:.1f} s: {detail} -> {head_path(args.output)}")
    return 0


REGISTER = [register]
