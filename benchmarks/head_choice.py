"""Ridge vs softmax vs auto (``choose_head``): test accuracy and training seconds of each head.

    python benchmarks/head_choice.py                                  # everything below (~15 min, 2 cores)
    python benchmarks/head_choice.py --sets GunPoint --synthetic 2100 # a quick look
    python benchmarks/head_choice.py --no-recipe --json out.json

Data: the UCR/UEA sets shipped in the aeon wheel (default train/test splits, read with aeon's
``load_from_ts_file``), and the synthetic demo set (``rocketstream.synthetic.make_labelled`` with the
demo's defaults: 3 channels x 1,000 points, chunks of 100, seed 0; train stream 0, test stream 1, a
test split of 30% of all series as ``rocketstream demo`` makes it) at each ``--synthetic`` size.

For each set: MiniRocket features from ``rocketstream.core`` (``fit(random_state=0)`` and
``transform``), then ``RidgeHead()`` and ``SoftmaxHead()`` with their defaults, fitted and timed as a
user would (NumPy features in memory); "recipe" is the softmax head with the authors' recipe as the
defaults used to be (minibatch 256, 10% validation split, no label smoothing). "auto" is the head
``choose_head`` picks; it is the same training as that column (not run twice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

AEON_SETS = ["GunPoint", "ArrowHead", "ItalyPowerDemand", "BasicMotions", "OSULeaf", "JapaneseVowels_eq",
             "ACSF1", "PickupGestureWiimoteZ_eq"]
SYNTHETIC = [2100, 20000]
RECIPE = {"batch_size": 256, "validation_fraction": 0.1, "label_smoothing": 0.0}


def aeon_split(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A dataset shipped in the aeon wheel (``<Name>`` or ``<Name>_eq``): float32 train and test sets."""
    import aeon
    from aeon.datasets import load_from_ts_file

    folder = Path(aeon.__file__).parent / "datasets" / "data" / name.removesuffix("_eq")
    out = []
    for split in ("TRAIN", "TEST"):
        x, y = load_from_ts_file(str(folder / f"{name}_{split}.ts"))
        out += [np.asarray(x, dtype=np.float32), np.asarray(y)]
    return tuple(out)


def demo_split(n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The demo's data with ``n_train`` training series and its 30% test split."""
    from rocketstream.synthetic import make_labelled

    n_test = int(round(n_train * 3 / 7))
    xtr, ytr = make_labelled(n_train, 3, 1000, chunk_size=100, seed=0, stream=0)
    xte, yte = make_labelled(n_test, 3, 1000, chunk_size=100, seed=0, stream=1)
    return xtr, ytr, xte, yte


def run_head(head, ftr: np.ndarray, ytr: np.ndarray, fte: np.ndarray, yte: np.ndarray) -> dict:
    """Fit (timed) and score one head."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the ridge Gram pass rechunks on purpose
        warnings.simplefilter("ignore")
        head.fit(ftr, ytr)
    seconds = time.perf_counter() - t0
    out = {"accuracy": float((head.predict(fte) == yte).mean()), "seconds": round(seconds, 2)}
    if head.kind == "softmax":
        out.update(epochs=len(head.history_["epoch"]), batch_size=head.batch_size_,
                   n_validation=head.n_validation_)
    return out


def warm_up() -> None:
    """Train each head once on tiny data, so one-time imports (torch.optim pulls in torch._dynamo,
    seconds) are not charged to the first set."""
    from rocketstream.heads import RidgeHead, SoftmaxHead

    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    y = np.arange(40) % 2
    RidgeHead().fit(x, y)
    SoftmaxHead(epochs=1).fit(x, y)


def bench(name: str, data: tuple, recipe: bool) -> dict:
    from rocketstream.core import fit, transform
    from rocketstream.heads import RidgeHead, SoftmaxHead
    from rocketstream.heads.choice import choose_head

    xtr, ytr, xte, yte = data
    t0 = time.perf_counter()
    params = fit(xtr, random_state=0)
    ftr, fte = transform(xtr, params).numpy(), transform(xte, params).numpy()
    row = {"set": name, "n_train": len(ytr), "n_test": len(yte), "channels": xtr.shape[1],
           "length": xtr.shape[2], "n_features": ftr.shape[1],
           "features_seconds": round(time.perf_counter() - t0, 2)}
    row["ridge"] = run_head(RidgeHead(), ftr, ytr, fte, yte)
    row["softmax"] = run_head(SoftmaxHead(), ftr, ytr, fte, yte)
    if recipe:
        row["recipe"] = run_head(SoftmaxHead(**RECIPE), ftr, ytr, fte, yte)
    kind, reason = choose_head(len(ytr), ftr.shape[1], "classification")
    row["auto"] = {"kind": kind, "reason": reason, **row[kind]}
    return row


def table(rows: list[dict], recipe: bool) -> str:
    head = ["set", "train x test", "ridge acc", "ridge s", "softmax acc", "softmax s",
            "softmax epochs / batch / val"]
    if recipe:
        head += ["recipe acc", "recipe s"]
    head += ["auto", "auto acc", "auto s", "softmax - ridge"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["softmax"]
        cells = [r["set"], f"{r['n_train']} x {r['n_test']}", f"{r['ridge']['accuracy']:.4f}",
                 f"{r['ridge']['seconds']:.1f}", f"{s['accuracy']:.4f}", f"{s['seconds']:.1f}",
                 f"{s['epochs']} / {s['batch_size']} / {s['n_validation']}"]
        if recipe:
            cells += [f"{r['recipe']['accuracy']:.4f}", f"{r['recipe']['seconds']:.1f}"]
        cells += [r["auto"]["kind"], f"{r['auto']['accuracy']:.4f}", f"{r['auto']['seconds']:.1f}",
                  f"{100 * (s['accuracy'] - r['ridge']['accuracy']):+.2f} pt"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=AEON_SETS, help="aeon datasets (default: %(default)s)")
    parser.add_argument("--synthetic", type=int, nargs="*", default=SYNTHETIC,
                        help="training series of the synthetic demo set (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: faster for the softmax head's small minibatches "
                             "on a shared 2-core machine)")
    parser.add_argument("--no-recipe", dest="recipe", action="store_false",
                        help="skip the softmax head with the authors' recipe (the old defaults)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({args.threads} thread(s)), load average {os.getloadavg()[0]:.1f}", flush=True)
    warm_up()
    jobs = [(name, lambda n=name: aeon_split(n)) for name in args.sets]
    jobs += [(f"demo {n}", lambda n=n: demo_split(n)) for n in args.synthetic]
    rows = []
    for name, load in jobs:
        row = bench(name, load(), args.recipe)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(table(rows, args.recipe))
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
