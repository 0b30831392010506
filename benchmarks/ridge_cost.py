"""Time and peak memory of the exact ridge head's training, by phase, from a features Zarr store.

    python benchmarks/ridge_cost.py                                   # 4,000 and 8,000 rows x 2,000 features
    python benchmarks/ridge_cost.py --rows 12000 --features 9996      # the issue-15 size
    python benchmarks/ridge_cost.py --rows 2000 4000 --features 1500 --compare-ref HEAD~1
    python benchmarks/ridge_cost.py --rows 1000 --features 3000       # F > n: the Gram form

Each size gets a synthetic MiniRocket-like float32 features store (PPV values k/150; 5% of the features
carry a few latent factors, on which the 4 classes depend), written chunk by chunk once
and kept under ``--store-dir`` (default: a folder in the system's temp dir) for the next run. Training
runs in a fresh subprocess that reports wall time per phase and its peak RSS (ru_maxrss):

- stats: the statistics pass (covariance form) or the moments pass (Gram form);
- decomp: the band reduction (``BandReduction``) or eigendecomposition (``numpy.linalg.eigh``);
- loo: the streamed leave-one-out pass (covariance form; in Gram form the coefficients' pass);
- other: the rest (standardising, the Gram matrix, solves, coefficients).

``--compare-ref REV`` also trains with the package as it was at git revision REV (extracted with
``git archive``) on the same stores and compares alpha, cv scores, coefficients and decisions.
The machine's load average is printed beside the numbers (other work skews them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_store(path: Path, rows: int, features: int, chunk_rows: int, seed: int = 0) -> Path:
    """Write (once) a synthetic features store and its labels; returns the folder."""
    import zarr

    done = path / "complete"
    if done.exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((8, features)).astype(np.float32) * (rng.random(features) < 0.05)
    offset = rng.uniform(-1.0, 1.0, features).astype(np.float32)
    x = zarr.create_array(store=str(path / "features.zarr"), shape=(rows, features),
                          chunks=(chunk_rows, features), dtype="float32", overwrite=True)
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, chunk_rows):
        stop = min(rows, start + chunk_rows)
        latent = rng.standard_normal((stop - start, 8)).astype(np.float32)
        logit = latent @ loadings + offset + rng.standard_normal((stop - start, features), dtype=np.float32)
        x[start:stop] = np.floor(150.0 / (1.0 + np.exp(-logit))) / np.float32(150)
        y[start:stop] = (latent[:, 0] + 0.2 * rng.standard_normal(stop - start) > 0) + 2 * (latent[:, 1] > 0)
    np.save(path / "labels.npy", y)
    done.touch()
    return path


def child(store: Path, out: Path, mode: str) -> None:
    """Train in this process, timing the phases; write the results beside ``out``."""
    import zarr

    import rocketstream.heads.ridge as ridge

    times: dict[str, float] = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        return run

    for name, phase in (("accumulate", "stats"), ("feature_moments", "stats"), ("chain_reduce", "loo"),
                        ("BandReduction", "decomp"), ("Tridiagonal", "decomp")):  # now, before 2026-11-30
        if hasattr(ridge, name):
            setattr(ridge, name, timed(phase, getattr(ridge, name)))
    np.linalg.eigh = timed("decomp", np.linalg.eigh)
    features = zarr.open_array(str(store / "features.zarr"), mode="r")
    labels = np.load(store / "labels.npy")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    head = ridge.RidgeHead(mode=mode).fit(features, labels)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = min(2000, features.shape[0])
    np.savez(out.with_suffix(".npz"), coef=np.asarray(head.coef_), intercept=np.atleast_1d(head.intercept_),
             cv_scores=head.cv_scores_, decision=head.decision_function(features[:rows]))
    phases = {k: round(v, 2) for k, v in times.items()}
    phases["other"] = round(total - sum(times.values()), 2)
    out.write_text(json.dumps({"mode": head.mode_, "alpha": head.alpha_, "total": round(total, 2),
                               "phases": phases, "peak_mib": round(peak), "base_mib": round(base)}))


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_child(store: Path, out: Path, mode: str, package_root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, __file__, "--child", str(store), "--out", str(out), "--mode", mode],
                   check=True, env=env, cwd=package_root)
    return json.loads(out.read_text())


def extract_ref(rev: str, dest: Path) -> Path:
    """The package as it was at git revision ``rev``, unpacked under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rocketstream"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[4000, 8000])
    parser.add_argument("--features", type=int, nargs="+", default=[2000])
    parser.add_argument("--chunk-rows", type=int, default=256)
    parser.add_argument("--mode", default="auto", choices=["auto", "cov", "gram"])
    parser.add_argument("--store-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "rocketstream-ridge-cost")
    parser.add_argument("--compare-ref", metavar="REV", help="also time the package at this git revision")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out, args.mode)
        return
    print(f"ridge head, float32 store chunks of {args.chunk_rows} rows; load average {load_avg()} "
          f"({os.cpu_count()} CPUs)")
    head = (f"{'code':>8} {'rows':>6} {'F':>6} {'mode':>5} {'stats':>7} {'decomp':>7} {'loo':>7} "
            f"{'other':>7} {'total s':>8} {'peak MiB':>9} {'alpha':>9}  load")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        ref_root = extract_ref(args.compare_ref, Path(tmp) / "ref") if args.compare_ref else None
        for features in args.features:
            for rows in args.rows:
                name = f"{rows}x{features}-c{args.chunk_rows}-v3"
                store = make_store(args.store_dir / name, rows, features, args.chunk_rows)
                runs = [("new", ROOT)] + ([(args.compare_ref[:8], ref_root)] if ref_root else [])
                got = {}
                for name, root in runs:
                    out = Path(tmp) / f"{name.replace('/', '_')}-{rows}x{features}.json"
                    r = run_child(store, out, args.mode, root)
                    got[name] = (r, np.load(out.with_suffix(".npz")))
                    p = r["phases"]
                    print(f"{name:>8} {rows:>6} {features:>6} {r['mode']:>5} {p.get('stats', 0):>7.1f} "
                          f"{p.get('decomp', 0):>7.1f} {p.get('loo', 0):>7.1f} {p['other']:>7.1f} "
                          f"{r['total']:>8.1f} {r['peak_mib']:>9} {r['alpha']:>9.4g}  {load_avg()}",
                          flush=True)
                if len(got) == 2:
                    (a, fa), (b, fb) = got.values()
                    print(f"{'':>8} same alpha: {a['alpha'] == b['alpha']}; max relative difference: coef "
                          f"{rel(fa['coef'], fb['coef']):.2e}, decisions "
                          f"{rel(fa['decision'], fb['decision']):.2e}, cv scores "
                          f"{rel(fa['cv_scores'], fb['cv_scores']):.2e}", flush=True)


if __name__ == "__main__":
    main()
