"""``rocketstream train``, ``predict`` and ``evaluate``: heads from a features store, predictions into
Zarr, and scores against labels."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .argtypes import add_fill_missing, positive_int, seed
from .errors import UsageError

_LABELS_HELP = ("labels: STORE.zarr:NAME (an array or coordinate in a Zarr group, e.g. data.zarr:label), "
                "a Zarr group holding 'label', or a .npy file")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


# ---------------------------------------------------------------------------------------------- train
def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a ridge or softmax head from a features store, out of core",
                       description="Train a head on FEATURES (a features store from `rocketstream "
                       "transform`, or a .npy (n, features) array), streaming row chunks: exact ridge with "
                       "leave-one-out alpha, or a softmax/linear head with checkpoints.")
    p.add_argument("features", metavar="FEATURES", help="features store (.zarr) or .npy array")
    p.add_argument("--labels", metavar="SPEC", default=None,
                   help=_LABELS_HELP + " (default: the features store's own 'label' coordinate)")
    p.add_argument("--head", choices=("ridge", "softmax"), default="ridge", help="head kind (default ridge)")
    p.add_argument("--output", required=True, metavar="HEAD.npz", help="head file to write")
    p.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="default classification")
    p.add_argument("--epochs", type=positive_int, default=50, help="softmax: epochs (default 50)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="softmax: minibatch (default 256)")
    p.add_argument("--lr", type=_positive_float, default=1e-4, help="softmax: Adam learning rate (1e-4)")
    p.add_argument("--seed", type=seed, default=0, help="softmax: shuffling/split seed (default 0)")
    p.add_argument("--validation-fraction", type=_fraction, default=0.1,
                   help="softmax: held-out fraction for early stopping (default 0.1; 0 disables)")
    p.add_argument("--checkpoint-dir", metavar="DIR", default=None,
                   help="softmax: checkpoints, metrics.json and training_curve.png "
                   "(default: HEAD_checkpoint/ beside --output)")
    p.add_argument("--device", default=None, help="softmax: torch device (default cpu)")
    p.add_argument("--resume", action="store_true", help="softmax: continue from the checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing head / checkpoint")
    add_fill_missing(p, "labels")
    p.set_defaults(handler=run_train)


def _head_path(text: str) -> Path:
    out = Path(text).expanduser()
    return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")


def open_features_array(path: str) -> tuple[Any, Any]:
    """(features, the store's own label array or None) for a features store or a .npy file.

    A store's features come as a :class:`~rocketstream.storage.features.VerifiedFeatures`, so every
    chunk the head reads is checked against its sha256.
    """
    import numpy as np

    from ..storage.features import FeatureStore
    from ..storage.locations import resolve

    loc = resolve(path)
    if path.endswith(".npy"):
        try:
            return np.load(loc.target, mmap_mode="r", allow_pickle=False), None
        except FileNotFoundError:
            raise FileNotFoundError(f"features not found: {loc}") from None
    if not loc.url and not Path(loc.target).exists():
        raise FileNotFoundError(f"features not found: {loc}; make them with `rocketstream transform`")
    store = FeatureStore.open(loc)
    done = store.done()
    if not done.all():
        raise UsageError(f"features store {loc} is incomplete ({int(done.sum())}/{done.size} chunks); "
                         "finish it with `rocketstream transform ... --resume`")
    labels = store.group["label"] if "label" in store.group else None
    return store.verified(), labels


def _check_train_paths(args: argparse.Namespace, out: Path, ckpt: Path | None) -> None:
    """Refuse outputs that overlap the inputs, or replace what is not a head, before reading anything."""
    from ..storage.locations import check_outputs, resolve
    from ..storage.outputs import existing_output

    inputs = [("features", resolve(args.features))]
    if args.labels is not None:
        inputs.append(("labels", resolve(args.labels.rpartition(":")[0] if _has_label_name(args.labels)
                                          else args.labels)))
    outputs = [("head file", resolve(out))]
    if ckpt is not None:
        outputs.append(("checkpoint directory", resolve(ckpt)))
    check_outputs(outputs, inputs)
    if existing_output(resolve(out), "head") and not (args.overwrite or args.resume):
        raise UsageError(f"head file {resolve(out)} already exists; pass --overwrite to replace it")


def _has_label_name(spec: str) -> bool:
    head, sep, tail = spec.rpartition(":")
    return bool(sep and head and "/" not in tail and not tail.startswith("//") and not head.endswith(":"))


def run_train(args: argparse.Namespace) -> int:
    from ..api.predict import labels_array, load_labels
    from ..heads import RidgeHead, train_softmax

    out = _head_path(args.output)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass only one")
    if args.head == "ridge" and args.resume:
        raise UsageError("--resume applies to --head softmax only (ridge trains in one pass)")
    ckpt = None
    if args.head == "softmax":
        ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else out.with_name(out.stem + "_checkpoint")
    _check_train_paths(args, out, ckpt)
    features, own_labels = open_features_array(args.features)
    if args.labels is not None:
        labels = load_labels(args.labels, fill_missing=args.fill_missing)
    elif own_labels is not None:
        from ..storage.zarrstore import read_checked

        labels = labels_array(read_checked(own_labels, f"the 'label' coordinate of {args.features}",
                                           args.fill_missing))
    else:
        raise UsageError(f"{args.features} has no 'label' coordinate; pass --labels STORE.zarr:NAME or "
                         "a .npy file")
    t0 = time.perf_counter()
    if args.head == "ridge":
        import warnings

        from dask.array import PerformanceWarning

        with warnings.catch_warnings():  # the Gram pass rechunks on purpose
            warnings.simplefilter("ignore", PerformanceWarning)
            head = RidgeHead(task=args.task).fit(features, labels)
        head.save(out, overwrite=True)
        detail = f"alpha {head.alpha_:.4g} (leave-one-out)"
    else:
        if (ckpt / "checkpoint.pt").exists() and not (args.resume or args.overwrite):
            raise UsageError(f"{ckpt} already holds a checkpoint; pass --resume to continue it or "
                             "--overwrite to start afresh")
        head = train_softmax(features, labels, checkpoint_dir=ckpt, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             validation_fraction=args.validation_fraction, task=args.task,
                             device=args.device, resume=args.resume, overwrite=args.overwrite,
                             progress=sys.stderr.isatty())
        head.save(out, overwrite=True)
        hist = head.history_
        val = [v for v in hist.get("val_accuracy", []) if v is not None]
        detail = (f"{len(hist.get('epoch', []))} epochs, best epoch {head.best_epoch_}"
                  + (f", validation accuracy {val[-1]:.3f}" if val else "") + f"; metrics in {ckpt}")
    n, f = features.shape
    print(f"trained a {args.head} {args.task} head on {n} x {f} features in "
          f"{time.perf_counter() - t0:.1f} s: {detail} -> {out}")
    return 0


# -------------------------------------------------------------------------------------------- predict
def register_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="transform + head per chunk into a predictions Zarr store",
                       description="Transform INPUT with the model and apply the head chunk by chunk (one "
                       "Dask task per sample chunk), writing label and proba/decision (classification) or "
                       "value (regression) to a Zarr store with done markers; --resume finishes an "
                       "interrupted run.")
    p.add_argument("input", metavar="INPUT", help="input: a Zarr store path or fsspec URL (array, or group "
                   "with --variable), or a .npy file; shape (sample, channel, time)")
    p.add_argument("--model", required=True, metavar="M.json", help="model file from `rocketstream fit`")
    p.add_argument("--head", required=True, metavar="HEAD.npz", help="head file from `rocketstream train`")
    p.add_argument("--output", required=True, metavar="PRED.zarr", help="predictions store to write")
    p.add_argument("--variable", metavar="NAME", help="array name inside a Zarr group")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|threads|processes|synchronous",
                   help="Dask scheduler: a dask.distributed address or a local one (default threads)")
    p.add_argument("--device", default=None, help="torch device (default: the worker's GPU if any, else CPU)")
    p.add_argument("--chunk-size", type=positive_int, default=None, metavar="N", help="samples per task")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--resume", action="store_true", help="compute only chunks not yet done (the same model, "
                   "head and input; the chunks done are first re-hashed and torn ones recomputed)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="with --resume: trust the done markers without re-reading the chunks")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    add_fill_missing(p)
    p.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from ..api.predict import predict
    from ..storage.locations import redact

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    group = predict(args.input, args.model, args.head, args.output, variable=args.variable,
                    chunk_size=args.chunk_size, overwrite=args.overwrite, resume=args.resume,
                    scheduler=args.scheduler, device=args.device, progress=progress,
                    fill_missing=args.fill_missing, verify=args.verify)
    meta = dict(group.attrs)["rocketstream"]
    dt = time.perf_counter() - t0
    what = (f"{len(meta['classes'])} classes" if meta["task"] == "classification" else "regression")
    print(f"predicted {meta['n_samples']} series ({what}, {meta['head']['kind']} head) in {dt:.1f} s "
          f"({meta['n_samples'] / max(dt, 1e-9):.0f} series/s) -> {redact(args.output)}")
    return 0


# ------------------------------------------------------------------------------------------- evaluate
def register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a predictions store against labels",
                       description="Print accuracy and the confusion matrix (classification) or RMSE, MAE "
                       "and R^2 (regression) of PRED.zarr against the true labels.")
    p.add_argument("predictions", metavar="PRED.zarr", help="predictions store from `rocketstream predict`")
    p.add_argument("--labels", required=True, metavar="SPEC", help=_LABELS_HELP)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_fill_missing(p, "labels")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..api.predict import evaluate

    metrics = evaluate(args.predictions, args.labels, verbose=not args.json, fill_missing=args.fill_missing)
    if args.json:
        print(json.dumps(metrics, indent=1))
    return 0


REGISTER = [register_train, register_predict, register_evaluate]
