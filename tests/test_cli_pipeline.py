"""The fit / transform / info commands: help, end to end, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.cli import main
from rocketstream.core import load, transform


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    x = make_data(120, 2, 90, seed=5)
    return x, write_zarr(root / "data.zarr", x, 30, group_var="X"), root


@pytest.mark.parametrize("command", ["info", "demo", "ingest", "fit", "transform", "train", "predict",
                                     "evaluate"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: rocketstream {command}" in capsys.readouterr().out


def test_fit_transform_info_end_to_end(dataset, tmp_path, capsys):
    x, src, _ = dataset
    model, out = tmp_path / "m.json", tmp_path / "f.zarr"
    assert main(["fit", src, "--variable", "X", "--model", str(model), "--seed", "3",
                 "--num-features", "336", "--max-dilations", "8"]) == 0
    params = load(model)
    assert params.seed == 3 and params.extra["variable"] == "X" and params.extra["source"] == src
    assert main(["transform", src, "--variable", "X", "--model", str(model), "--output", str(out),
                 "--scheduler", "synchronous", "--chunk-size", "50", "--memory-budget", "4MB"]) == 0
    assert "3 of 3 chunks computed" in capsys.readouterr().out
    feats = zarr.open_group(str(out))["features"][:]
    assert np.array_equal(feats, transform(x, params).cpu().numpy())
    assert main(["transform", src, "--variable", "X", "--model", str(model), "--output", str(out),
                 "--resume", "--workers", "2"]) == 0
    assert "0 of 3 chunks computed" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [120, 336] and info["complete"] and info["chunks_done"] == "3/3"
    assert main(["info", str(model)]) == 0
    assert "seed" in capsys.readouterr().out


def test_console_script_subprocess(dataset, tmp_path):
    _, src, _ = dataset
    exe = Path(sys.executable).with_name("rocketstream")
    model = tmp_path / "m.json"
    res = subprocess.run([str(exe), "fit", src, "--variable", "X", "--model", str(model), "--seed", "1",
                          "--num-features", "84"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert model.exists() and "fitted 84 features" in res.stdout
    res = subprocess.run([str(exe), "fit", src, "--model", str(model)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _fails(argv, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err


def test_bad_input_exits_2_with_one_line(dataset, tmp_path, capsys):
    x, src, root = dataset
    model = tmp_path / "m.json"
    assert main(["fit", src, "--variable", "X", "--model", str(model), "--seed", "0",
                 "--num-features", "84"]) == 0
    capsys.readouterr()
    np.save(tmp_path / "flat.npy", x[:, 0])
    bad_model = tmp_path / "bad.json"
    bad_model.write_text("{not json")
    other = write_zarr(tmp_path / "other.zarr", make_data(30, 3, 90), 10)
    _fails(["fit", str(tmp_path / "nope.zarr"), "--model", str(tmp_path / "a.json")], capsys, "not found")
    _fails(["fit", src, "--variable", "Y", "--model", str(tmp_path / "a.json")], capsys, "'Y' not found")
    _fails(["fit", str(root), "--model", str(tmp_path / "a.json")], capsys, "Zarr")
    _fails(["fit", str(tmp_path / "flat.npy"), "--model", str(tmp_path / "a.json")], capsys, "3-D")
    _fails(["fit", src, "--variable", "X", "--model", str(model)], capsys, "already exists")
    _fails(["transform", src, "--variable", "X", "--model", str(bad_model), "--output",
            str(tmp_path / "o.zarr")], capsys, "not valid JSON")
    _fails(["transform", other, "--model", str(model), "--output", str(tmp_path / "o.zarr")], capsys,
           "3 channels but the model was fitted on 2")
    _fails(["transform", src, "--variable", "X", "--model", str(model), "--output", str(tmp_path / "o.zarr"),
            "--scheduler", "bogus"], capsys, "unknown scheduler")
    _fails(["info", str(tmp_path)], capsys, "no features store")


def test_existing_output_is_untouched_without_overwrite(dataset, tmp_path, capsys):
    _, src, _ = dataset
    model, out = tmp_path / "m.json", tmp_path / "f.zarr"
    base = ["--variable", "X", "--model", str(model)]
    assert main(["fit", src, *base, "--seed", "0", "--num-features", "84"]) == 0
    assert main(["transform", src, *base, "--output", str(out)]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _fails(["transform", src, *base, "--output", str(out)], capsys, "--overwrite")
    _fails(["transform", src, *base, "--output", str(out), "--resume", "--overwrite"], capsys, "exclude")
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["transform", src, *base, "--output", str(out), "--overwrite"]) == 0
