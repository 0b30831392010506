"""Accuracy of rocketstream's MiniRocket + ridge on the UCR/UEA datasets that ship in aeon's wheel,
next to the published MiniRocket results. Nothing is downloaded.

    python workflows/ucr_accuracy/run.py            # all seven datasets
    python workflows/ucr_accuracy/run.py --quick    # ItalyPowerDemand only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DATASETS = ("GunPoint", "ArrowHead", "ItalyPowerDemand", "OSULeaf", "ACSF1", "BasicMotions",
            "JapaneseVowels_eq")

#: name -> (DESIGN.md anchor: aeon MiniRocket + RidgeClassifierCV on the default split,
#:          published mean of 30 resamples, published resample 0); None where there is none.
#: Published values: angus924/minirocket results (minirocket-reference.md, "Published MiniRocket
#: accuracies"); the multivariate sets are not in the published 109 (sktime's test gives BasicMotions
#: 1.0 and JapaneseVowels > 0.97).
REFERENCE: dict[str, tuple[float | None, float | None, float | None]] = {
    "GunPoint": (1.000, 0.9924, 0.9933),
    "ArrowHead": (0.897, 0.8810, 0.8629),
    "ItalyPowerDemand": (0.965, 0.9596, 0.9689),
    "OSULeaf": (None, 0.9576, 0.9587),
    "ACSF1": (0.90, 0.8223, 0.9200),
    "BasicMotions": (1.0, None, None),
    "JapaneseVowels_eq": (0.978, None, None),
}


def aeon_ts_file(name: str, split: str) -> Path:
    """The .ts file of a dataset shipped inside aeon (raises if it is not there: we never download)."""
    import aeon.datasets

    base = name.removesuffix("_eq")
    path = Path(aeon.datasets.__file__).parent / "data" / base / f"{name}_{split.upper()}.ts"
    if not path.exists():
        raise SystemExit(f"{name} does not ship with this aeon ({path} missing); this workflow never "
                         f"downloads: choose from {', '.join(DATASETS)}")
    return path


def load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, channels, length), labels) via aeon's loader, from the shipped files only."""
    from aeon.datasets import load_classification

    aeon_ts_file(name, split)  # refuse anything that would need a download
    x, y = load_classification(name, split=split)
    return np.asarray(x, dtype=np.float32), np.asarray(y).astype(str)


def run_dataset(name: str, workdir: Path, seed: int, ingest: bool, scheduler: str,
                overwrite: bool = False) -> dict:
    """fit -> transform to a features store -> ridge -> predict to a predictions store -> evaluate."""
    from dask.array import PerformanceWarning

    from rocketstream.api.outofcore import fit, transform_to_zarr
    from rocketstream.api.predict import evaluate, load_labels, predict
    from rocketstream.heads import RidgeHead

    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if ingest:  # the shipped .ts files -> Zarr stores (X, label), then everything reads Zarr
        from rocketstream.ingest import ingest as ingest_file

        train, test = d / "train.zarr", d / "test.zarr"
        ingest_file(aeon_ts_file(name, "train"), train, overwrite=overwrite)
        ingest_file(aeon_ts_file(name, "test"), test, overwrite=overwrite)
        y_train = load_labels(f"{train}:label").astype(str)
        y_test = load_labels(f"{test}:label").astype(str)
        src_train, src_test, var = str(train), str(test), "X"
    else:
        src_train, y_train = load(name, "train")
        src_test, y_test = load(name, "test")
        var = None
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    params = fit(src_train, variable=var, random_state=seed)
    feats = transform_to_zarr(src_train, params, d / "features.zarr", variable=var, scheduler=scheduler,
                              overwrite=overwrite)
    t_transform = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the ridge Gram pass rechunks on purpose
        warnings.simplefilter("ignore", PerformanceWarning)
        head = RidgeHead().fit(feats, y_train)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict(src_test, params, head, d / "predictions.zarr", variable=var, scheduler=scheduler,
            overwrite=overwrite)
    metrics = evaluate(d / "predictions.zarr", y_test, verbose=False)
    t_predict = time.perf_counter() - t0
    n_train, channels, length = (int(v) for v in (len(y_train), params.n_channels, params.length))
    anchor, mean30, res0 = REFERENCE.get(name, (None, None, None))
    return {"dataset": name, "n_train": n_train, "n_test": len(y_test), "channels": channels,
            "length": length, "accuracy": metrics["accuracy"], "aeon_anchor": anchor,
            "published_mean30": mean30, "published_resample0": res0, "alpha": head.alpha_,
            "seconds": {"load": round(t_load, 3), "fit_transform": round(t_transform, 3),
                        "train": round(t_train, 3), "predict_evaluate": round(t_predict, 3)}}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def table(rows: list[dict]) -> str:
    """The accuracy table, as Markdown."""
    head = ("| dataset | train | test | ch x len | rocketstream | aeon anchor | published mean (30) | "
            "published resample 0 | fit+transform s | ridge s |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['n_train']} | {r['n_test']} | {r['channels']} x {r['length']} | "
                     f"**{r['accuracy']:.4f}** | {_fmt(r['aeon_anchor'])} | {_fmt(r['published_mean30'])} | "
                     f"{_fmt(r['published_resample0'])} | {r['seconds']['fit_transform']:.2f} | "
                     f"{r['seconds']['train']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names (default: all)")
    ap.add_argument("--quick", action="store_true", help="ItalyPowerDemand only (a smoke test)")
    ap.add_argument("--seed", type=int, default=0, help="MiniRocket seed (default 0)")
    ap.add_argument("--ingest", action="store_true",
                    help="ingest the shipped .ts files into Zarr stores first and read those")
    ap.add_argument("--scheduler", default="threads", help="Dask scheduler (default threads)")
    ap.add_argument("--workdir", default=None, help="where stores go (default: a temporary directory)")
    ap.add_argument("--overwrite", action="store_true", help="replace stores of a previous run in --workdir")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    names = ["ItalyPowerDemand"] if args.quick else [s.strip() for s in args.datasets.split(",") if s.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    with tempfile.TemporaryDirectory(prefix="rocketstream-ucr-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        rows = []
        for name in names:
            row = run_dataset(name, workdir, args.seed, args.ingest, args.scheduler, args.overwrite)
            rows.append(row)
            print(f"{name}: accuracy {row['accuracy']:.4f} (published mean {_fmt(row['published_mean30'])}, "
                  f"aeon anchor {_fmt(row['aeon_anchor'])})", flush=True)
    print()
    print(table(rows))
    print("\naeon anchor: aeon MiniRocket + RidgeClassifierCV on the default split (DESIGN.md; "
          "seed-dependent by about +-0.01). Published: angus924/minirocket, 30-resample mean and resample 0.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
