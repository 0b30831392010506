"""Start-up cost of every ``rocketstream`` command: wall time on tiny data, and what it imports.

    python benchmarks/startup.py [--runs 5] [--train T.ts --test T.ts] [--json F]

On a tiny dataset (GunPoint from aeon's wheel: 50 + 150 series of length 150, 1000 features) each step
computes in well under a second, so a command's wall time is almost all fixed cost: interpreter start,
imports, argument parsing. Every command runs ``--runs`` times in a fresh subprocess (the installed
``rocketstream`` entry point, in a temporary directory); the table gives the median and the fastest run
and, from one extra run, which heavy modules the command imported (torch, dask, distributed, zarr,
xarray, numba). The floor for comparison: ``python -c pass``, and importing NumPy, Zarr and
``dask.array`` (which itself imports xarray, pandas and SciPy where installed), and torch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "dask", "distributed", "zarr", "xarray", "numba")
FLOOR = ("pass", "import numpy", "import numpy, zarr", "import numpy, zarr, dask.array", "import torch")

# Runs a command in-process, then reports on stderr which heavy modules it imported (one line, last).
_PROBE = (
    "import sys\n"
    "from rocketstream.cli.main import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    f"heavy = {HEAVY!r}\n"
    "print('IMPORTED ' + ','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _default_data(split: str) -> Path:
    import aeon

    return Path(aeon.__file__).parent / "datasets" / "data" / "GunPoint" / f"GunPoint_{split}.ts"


def _entry_point() -> list[str]:
    exe = Path(sys.executable).with_name("rocketstream")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rocketstream.cli"]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return dt, proc


def _imported(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    _, proc = _run([sys.executable, "-c", _PROBE, *argv], cwd, env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED ")]
    return (lines[-1][len("IMPORTED "):] or "-") if lines else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    ap.add_argument("--train", type=Path, default=None, help="training .ts file (default aeon's GunPoint)")
    ap.add_argument("--test", type=Path, default=None, help="test .ts file (default aeon's GunPoint)")
    ap.add_argument("--num-features", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()
    train = args.train or _default_data("TRAIN")
    test = args.test or _default_data("TEST")
    rs = _entry_point()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    work = Path(tempfile.mkdtemp(prefix="rs-startup-"))
    nf = str(args.num_features)
    # (name, argv); every argv can be repeated: outputs are overwritten
    steps = [
        ("--help", ["--help"]),
        ("ingest", ["ingest", str(train), "train.zarr", "--overwrite", "--no-progress"]),
        ("ingest (test)", ["ingest", str(test), "test.zarr", "--overwrite", "--no-progress"]),
        ("fit", ["fit", "train.zarr", "--variable", "X", "--model", "m.json", "--seed", "0",
                 "--num-features", nf, "--overwrite"]),
        ("info model", ["info", "m.json"]),
        ("transform", ["transform", "train.zarr", "--variable", "X", "--model", "m.json",
                       "--output", "f.zarr", "--overwrite", "--no-progress"]),
        ("info features", ["info", "f.zarr"]),
        ("train ridge", ["train", "f.zarr", "--labels", "train.zarr:label", "--head", "ridge",
                         "--output", "h.npz", "--overwrite", "--no-progress"]),
        ("predict", ["predict", "test.zarr", "--variable", "X", "--model", "m.json", "--head", "h.npz",
                     "--output", "p.zarr", "--overwrite", "--no-progress"]),
        ("evaluate", ["evaluate", "p.zarr", "--labels", "test.zarr:label", "--json"]),
    ]
    rows = []
    try:
        floor = [(f"python -c '{code}'", [sys.executable, "-c", code]) for code in FLOOR]
        for name, cmd in floor:
            times = sorted(_run(cmd, work, env)[0] for _ in range(args.runs))
            rows.append((name, statistics.median(times), times[0], ""))
        for name, argv in steps:
            times = sorted(_run([*rs, *argv], work, env)[0] for _ in range(args.runs))
            rows.append((name, statistics.median(times), times[0], _imported(argv, work, env)))
            print(f"  {name}: {rows[-1][1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} CPUs, "
          f"{args.runs} runs per command, {args.num_features} features, data {train.name} / {test.name}\n")
    print("| command | median s | fastest s | heavy modules imported |")
    print("|---|---:|---:|---|")
    for name, med, best, mods in rows:
        print(f"| `{name}` | {med:.2f} | {best:.2f} | {mods} |")
    if args.json:
        keys = ("command", "median_s", "fastest_s", "imported")
        args.json.write_text(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=1))


if __name__ == "__main__":
    main()
