"""Each command imports only what it needs (start-up cost; ``benchmarks/startup.py`` measures it).

Checked in fresh interpreters, since this test process has torch, Dask and Zarr loaded already: which
heavy modules a command's import chain, or a whole CLI pipeline, leaves loaded. No timings. torch is
imported only where it computes: on a CPU-only machine with the native kernel, fit, transform, predict
and a ridge head run without it, and give the same bits as the torch engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from rocketstream.config import gpu_possible
from rocketstream.core import fit, load, native, transform

HEAVY = ("torch", "dask", "distributed", "zarr", "xarray")
#: what ``import dask.array`` loads (it imports xarray, and with it pandas, where installed): about half a
#: second of start-up, which no local command on a Zarr input needs
ARRAY_STACK = ("dask.array", "xarray", "pandas")
AEON_DATA = Path(pytest.importorskip("aeon").__file__).parent / "datasets" / "data"


def loaded_after(code: str, cwd: Path | None = None) -> set[str]:
    """The heavy top-level modules loaded after running ``code`` in a fresh interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
             f"                        | (set(sys.modules) & set({ARRAY_STACK!r})))))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_help_and_package_roots_load_nothing_heavy():
    code = ("import rocketstream, rocketstream.api, rocketstream.core, rocketstream.graph\n"
            "import rocketstream.heads, rocketstream.storage, rocketstream.config\n"
            "from rocketstream.cli.main import build_parser\n"
            "build_parser().format_help()")
    assert loaded_after(code) == set()


def test_info_of_a_model_loads_neither_torch_nor_dask_nor_zarr():
    code = ("from rocketstream.cli.info import cmd_info\n"
            "from rocketstream.api.models import model_info, save_model, check_model_output\n"
            "from rocketstream.storage.locations import redact")
    assert loaded_after(code) == set()


@pytest.mark.parametrize("command, code", [
    ("ingest", "from rocketstream.ingest import read_any, write_collection"),
    ("info (store)", "from rocketstream.api.features import features_info"),
    ("train (ridge)", "from rocketstream.api.train import train_head\n"
                      "from rocketstream.heads import RidgeHead, load_head, HEAD_KINDS\nHEAD_KINDS['ridge']"),
    ("evaluate", "from rocketstream.api.predict import evaluate, load_labels"),
    ("fit / transform / predict", "from rocketstream.api.outofcore import fit, run_transform\n"
                                  "from rocketstream.api.predict import predict"),
    ("core", "from rocketstream.core import fit, transform, load, save, fit_biases\n"
             "from rocketstream.core.variable import fit_variable, transform_variable\n"
             "from rocketstream.core.transform import transform_numpy"),
])
def test_command_chains_import_no_torch(command, code):
    loaded = loaded_after(code)
    assert "torch" not in loaded, f"{command} imports torch"
    assert "distributed" not in loaded, f"{command} imports dask.distributed"
    assert not loaded & set(ARRAY_STACK), f"{command} imports {sorted(loaded & set(ARRAY_STACK))}"


def test_evaluate_needs_no_dask_array():
    # dask.array imports xarray (and pandas, scipy) as it loads; evaluate reads Zarr and labels only
    assert "xarray" not in loaded_after("from rocketstream.api.predict import evaluate, load_labels")


PIPELINE = """
import sys
from rocketstream.cli.main import main
gp = sys.argv[1]
for argv in (["ingest", gp + "/GunPoint_TRAIN.ts", "train.zarr", "--no-progress"],
             ["ingest", gp + "/GunPoint_TEST.ts", "test.zarr", "--no-progress"],
             ["fit", "train.zarr", "--variable", "X", "--model", "m.json", "--seed", "7",
              "--num-features", "840"],
             ["info", "m.json"],
             ["transform", "train.zarr", "--variable", "X", "--model", "m.json", "--output", "f.zarr",
              "--no-progress"],
             ["info", "f.zarr"],
             ["train", "f.zarr", "--output", "h.npz", "--no-progress"],
             ["predict", "test.zarr", "--variable", "X", "--model", "m.json", "--head", "h.npz",
              "--output", "p.zarr", "--no-progress"],
             ["evaluate", "p.zarr", "--labels", "test.zarr:label"]):
    assert main(argv) == 0, argv
"""


def test_cpu_pipeline_without_torch_gives_the_torch_engines_bits(tmp_path, monkeypatch):
    gp = AEON_DATA / "GunPoint"
    code = PIPELINE.replace("sys.argv[1]", repr(str(gp)))
    loaded = loaded_after(code, cwd=tmp_path)
    assert "distributed" not in loaded  # no client was asked for: nothing to find
    # a Zarr input is read by the tasks themselves, and ingest writes with Zarr: no Dask array, xarray
    # or pandas anywhere in a local pipeline (half a second of every command's start-up)
    assert not loaded & set(ARRAY_STACK), sorted(loaded & set(ARRAY_STACK))
    if not gpu_possible() and native.enabled():  # else the device rule, or the torch engine, needs torch
        assert "torch" not in loaded
    # the stores the torch-free run wrote equal what the torch engine computes here, bit for bit
    params = load(tmp_path / "m.json")
    x = zarr.open_group(str(tmp_path / "train.zarr"), mode="r")["X"][:]
    monkeypatch.setenv("ROCKETSTREAM_NATIVE", "0")
    assert not native.enabled()
    ref = fit(x, num_features=840, random_state=7, device="cpu")
    assert np.array_equal(params.biases, ref.biases)
    feats = zarr.open_group(str(tmp_path / "f.zarr"), mode="r")["features"][:]
    assert np.array_equal(feats, transform(x, ref, device="cpu").cpu().numpy())
