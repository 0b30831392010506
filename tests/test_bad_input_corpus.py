"""A corpus of bad inputs across the CLI and the Python API.

Each case must give a clear error naming the problem (checked by a pattern); on the CLI exit code 2
with exactly one line on stderr and no traceback; and it must leave every existing file untouched (a
hash of the whole workspace before and after; a case whose failure is only found mid-transform may
leave its *new* output behind, which then must not look complete).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import (
    fit,
    load_store_model,
    open_features,
    run_transform,
    transform_to_zarr,
)
from rocketstream.cli.main import main
from rocketstream.core import InputError, ModelFileError, from_dict, save, to_dict
from rocketstream.heads import CheckpointError, RidgeHead, SoftmaxHead, load_checkpoint, train_softmax
from rocketstream.storage import FeatureStore

N, C, L = 60, 2, 50


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace of good inputs and outputs that the bad cases must not touch."""
    root = tmp_path_factory.mktemp("corpus")
    x = make_data(N, C, L, seed=4)
    write_zarr(root / "x.zarr", x, 20, group_var="X")
    write_zarr(root / "arr.zarr", x, 20)
    params = fit(x, num_features=168, random_state=0)
    save(params, root / "m.json")
    save(fit(x, num_features=168, random_state=1), root / "m_other.json")
    run_transform(str(root / "x.zarr"), params, root / "f.zarr", variable="X", scheduler="synchronous")
    run_transform(x, params, root / "incomplete.zarr", chunk_size=20, scheduler="synchronous")
    run_transform(str(root / "arr.zarr"), params, root / "f_bare.zarr", scheduler="synchronous")  # no labels
    FeatureStore.open(root / "incomplete.zarr", mode="r+").reset([1])
    labels = np.arange(N) % 3
    np.save(root / "y.npy", labels)
    RidgeHead().fit(FeatureStore.open(root / "f.zarr").features, labels).save(root / "head.npz")
    train_softmax(FeatureStore.open(root / "f.zarr").features, labels, checkpoint_dir=root / "soft",
                  epochs=2, batch_size=16)
    (root / "plain_dir").mkdir()
    (root / "plain_dir" / "notes.txt").write_text("not a zarr store")
    (root / "cases").mkdir()
    return root


def tree_hash(root: Path, skip: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------- case builders
def npy(c: Path, arr: np.ndarray, name: str = "bad.npy") -> str:
    np.save(c / name, arr)
    return str(c / name)


def data(n: int = N, ch: int = C, length: int = L, **kw: Any) -> np.ndarray:
    return make_data(n, ch, length, seed=4, **kw)


def with_nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[45, 1, 7] = np.nan
    return x


def edited_model(ws: Path, c: Path) -> str:
    obj = json.loads((ws / "m.json").read_text())
    obj["seed"] = obj["seed"] + 1  # hand-edited: the checksum no longer matches
    (c / "edited.json").write_text(json.dumps(obj))
    return str(c / "edited.json")


def truncated(src: Path, c: Path, name: str) -> str:
    raw = src.read_bytes()
    (c / name).write_bytes(raw[: len(raw) // 2])
    return str(c / name)


def tampered_head(ws: Path, c: Path) -> str:
    with np.load(ws / "head.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["coef"] = arrays["coef"] * 1.01  # a changed weight, metadata left as it was
    np.savez(c / "tampered.npz", **arrays)
    return str(c / "tampered.npz")


def tampered_checkpoint(ws: Path, c: Path) -> str:
    import torch

    shutil.copytree(ws / "soft", c / "soft")
    state = torch.load(c / "soft" / "checkpoint.pt", weights_only=True)
    state["model"]["weight"][0, 0] += 1.0
    torch.save(state, c / "soft" / "checkpoint.pt")
    return str(c / "soft")


def garbage_zarr(c: Path) -> str:
    (c / "bad.zarr").mkdir()
    (c / "bad.zarr" / "zarr.json").write_text("{ this is not json")
    return str(c / "bad.zarr")


def two_arrays(c: Path) -> str:
    g = zarr.open_group(str(c / "two.zarr"), mode="w")
    for name in ("a", "b"):
        g.create_array(name, shape=(N, C, L), dtype="float32")[:] = data()
    return str(c / "two.zarr")


def train(ws: Path, features: str, *extra: str) -> list[str]:
    return ["train", features, "--output", str(ws / "cases" / "never.npz"), *extra]


def tf(ws: Path, src: str, *extra: str, model: str | None = None) -> list[str]:
    out = ["--output", str(ws / "cases" / "out.zarr")] if "--output" not in extra else []
    return ["transform", src, "--model", model or str(ws / "m.json"), *out, *extra]


Builder = Callable[[Path, Path], list[str]]

CLI_CASES: list[tuple[str, Builder, str]] = [
    ("fit-input-missing", lambda w, c: ["fit", str(w / "nope.zarr"), "--model", str(c / "m.json")],
     r"input not found: .*nope\.zarr"),
    ("fit-2d", lambda w, c: ["fit", npy(c, data()[:, 0]), "--model", str(c / "m.json")],
     r"must be 3-D .*got 2-D shape \(60, 50\).*X\[:, None, :\]"),
    ("fit-bool-dtype", lambda w, c: ["fit", npy(c, data() > 0), "--model", str(c / "m.json")],
     r"must hold real numbers .*dtype bool"),
    ("fit-string-dtype", lambda w, c: ["fit", npy(c, data().astype(str)), "--model", str(c / "m.json")],
     r"must hold real numbers .*dtype <U"),
    ("fit-length-below-9", lambda w, c: ["fit", npy(c, data(length=8)), "--model", str(c / "m.json")],
     r"length 8; MiniRocket needs at least 9"),
    ("fit-empty", lambda w, c: ["fit", npy(c, np.empty((0, C, L), np.float32)), "--model", str(c / "m.json")],
     r"has no samples \(shape \(0, 2, 50\)\)"),
    ("fit-nan", lambda w, c: ["fit", npy(c, np.where(data() > 1.5, np.nan, data())), "--model",
                              str(c / "m.json")], r"NaN or infinite"),
    ("fit-inf", lambda w, c: ["fit", npy(c, np.where(data() > 1.5, np.inf, data())), "--model",
                              str(c / "m.json")], r"NaN or infinite"),
    ("fit-group-ambiguous", lambda w, c: ["fit", two_arrays(c), "--model", str(c / "m.json")],
     r"name the \(sample, channel, time\) array with --variable"),
    ("fit-variable-missing", lambda w, c: ["fit", str(w / "x.zarr"), "--variable", "nope", "--model",
                                           str(c / "m.json")],
     r"variable 'nope' not found .*X \(60, 2, 50\)"),
    ("fit-model-exists", lambda w, c: ["fit", str(w / "arr.zarr"), "--model", str(w / "m.json")],
     r"m\.json already exists; pass --overwrite"),
    ("fit-model-dir-missing", lambda w, c: ["fit", str(w / "arr.zarr"), "--model", str(c / "no" / "m.json")],
     r"directory .* does not exist"),
    ("fit-unreadable-store", lambda w, c: ["fit", garbage_zarr(c), "--model", str(c / "m.json")],
     r"cannot open .*bad\.zarr as Zarr"),
    ("transform-model-missing", lambda w, c: tf(w, str(w / "arr.zarr"), model=str(c / "none.json")),
     r"model file not found"),
    ("transform-model-truncated", lambda w, c: tf(w, str(w / "arr.zarr"),
                                                  model=truncated(w / "m.json", c, "t.json")),
     r"not valid JSON .*truncated"),
    ("transform-model-hand-edited", lambda w, c: tf(w, str(w / "arr.zarr"), model=edited_model(w, c)),
     r"checksum mismatch: the model file was edited or corrupted"),
    ("transform-model-not-a-model", lambda w, c: tf(w, str(w / "arr.zarr"), model=str(w / "y.npy")),
     r"cannot read model file|not valid JSON"),
    ("transform-channels-mismatch", lambda w, c: tf(w, npy(c, data(ch=3))),
     r"3 channels but the model was fitted on 2"),
    ("transform-length-mismatch", lambda w, c: tf(w, npy(c, data(length=40))),
     r"length 40 but the model was fitted on length 50"),
    ("transform-3d-features-store", lambda w, c: tf(w, str(w / "f.zarr"), "--variable", "features"),
     r"must be 3-D .*got 2-D"),
    ("transform-unreadable-store", lambda w, c: tf(w, garbage_zarr(c)), r"cannot open .*bad\.zarr as Zarr"),
    ("transform-output-exists", lambda w, c: tf(w, str(w / "arr.zarr"), "--output", str(w / "f.zarr")),
     r"f\.zarr already exists; pass overwrite=True / --overwrite"),
    ("transform-overwrite-plain-dir",
     lambda w, c: tf(w, str(w / "arr.zarr"), "--output", str(w / "plain_dir"), "--overwrite"),
     r"plain_dir is a directory that is not a rocketstream store; refusing to delete"),
    ("transform-overwrite-file", lambda w, c: tf(w, str(w / "arr.zarr"), "--output", str(w / "y.npy"),
                                                 "--overwrite"),
     r"y\.npy is a file, not a rocketstream features store; refusing"),
    ("transform-resume-other-model", lambda w, c: tf(w, str(w / "x.zarr"), "--variable", "X", "--output",
                                                     str(w / "f.zarr"), "--resume",
                                                     model=str(w / "m_other.json")),
     r"made with a different model"),
    ("transform-resume-chunk-size", lambda w, c: tf(w, str(w / "x.zarr"), "--variable", "X", "--output",
                                                    str(w / "f.zarr"), "--resume", "--chunk-size", "7"),
     r"chunked by 20 samples; resume with the same chunk size"),
    ("transform-resume-not-a-store", lambda w, c: tf(w, str(w / "arr.zarr"), "--output", str(w / "x.zarr"),
                                                     "--resume"),
     r"x\.zarr is not a rocketstream features store"),
    ("transform-resume-and-overwrite", lambda w, c: tf(w, str(w / "arr.zarr"), "--resume", "--overwrite"),
     r"resume and overwrite exclude each other: resume finishes a store, overwrite replaces it"),
    ("train-features-missing", lambda w, c: train(w, str(w / "none.zarr"), "--labels", str(w / "y.npy")),
     r"features not found"),
    ("train-not-a-features-store", lambda w, c: train(w, str(w / "x.zarr"), "--labels", str(w / "y.npy")),
     r"x\.zarr is not a rocketstream features store .*rocketstream transform"),
    ("train-incomplete-store",
     lambda w, c: train(w, str(w / "incomplete.zarr"), "--labels", str(w / "y.npy")),
     r"incomplete \(2/3 chunks\).*--resume"),
    ("train-wrong-label-count", lambda w, c: train(w, str(w / "f.zarr"), "--labels",
                                                   npy(c, np.arange(N - 1) % 3, "y.npy")),
     r"labels has 59 entries but the features have 60 rows"),
    ("train-one-class", lambda w, c: train(w, str(w / "f.zarr"), "--labels", npy(c, np.zeros(N), "y.npy")),
     r"at least 2 classes"),
    ("train-label-variable-missing", lambda w, c: train(w, str(w / "f.zarr"), "--labels",
                                                        f"{w / 'x.zarr'}:nope"), r"no 'nope' array"),
    ("train-no-labels", lambda w, c: train(w, str(w / "f_bare.zarr")),
     r"has no 'label' coordinate; pass --labels"),
    ("train-head-exists", lambda w, c: ["train", str(w / "f.zarr"), "--labels", str(w / "y.npy"), "--output",
                                        str(w / "head.npz")], r"head\.npz already exists; pass --overwrite"),
    ("train-tampered-checkpoint",
     lambda w, c: train(w, str(w / "f.zarr"), "--labels", str(w / "y.npy"), "--head", "softmax", "--epochs",
                        "3", "--batch-size", "16", "--checkpoint-dir", tampered_checkpoint(w, c), "--resume"),
     r"checkpoint .* fails its sha256 check"),
    ("predict-tampered-head", lambda w, c: ["predict", str(w / "arr.zarr"), "--model", str(w / "m.json"),
                                            "--head", tampered_head(w, c), "--output", str(c / "p.zarr")],
     r"head file .* fails its sha256 check: it was edited or corrupted"),
    ("predict-truncated-head", lambda w, c: ["predict", str(w / "arr.zarr"), "--model", str(w / "m.json"),
                                             "--head", truncated(w / "head.npz", c, "h.npz"), "--output",
                                             str(c / "p.zarr")], r"cannot read head file .*h\.npz"),
    ("predict-head-missing", lambda w, c: ["predict", str(w / "arr.zarr"), "--model", str(w / "m.json"),
                                           "--head", str(c / "none.npz"), "--output", str(c / "p.zarr")],
     r"head file not found"),
    ("info-truncated-model", lambda w, c: ["info", truncated(w / "m.json", c, "t.json")], r"not valid JSON"),
]

# cases whose failure is found only while chunks are computed: a new output may remain, incomplete
MID_RUN: list[tuple[str, Builder, str]] = [
    ("transform-nan-in-a-chunk", lambda w, c: tf(w, npy(c, with_nan(data())), "--chunk-size", "20"),
     r"contains 1 NaN or infinite value\(s\), first in sample 45"),
]


@pytest.mark.parametrize(("name", "build", "pattern"), CLI_CASES + MID_RUN,
                         ids=[c[0] for c in CLI_CASES + MID_RUN])
def test_cli_bad_input(ws, capsys, name, build, pattern):
    case = ws / "cases" / name
    case.mkdir()
    argv = build(ws, case)
    new_output = ws / "cases" / "out.zarr"
    before = tree_hash(ws, skip=new_output)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rocketstream {argv[0]}: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    shown = [w for w in caught if "rocketstream" in str(w.filename) and w.category is not ResourceWarning]
    assert not shown, [str(w.message) for w in shown]  # warnings would add lines to stderr
    assert tree_hash(ws, skip=new_output) == before, "existing files changed"
    if new_output.exists():
        assert name in {m[0] for m in MID_RUN}, "a new output was left behind"
        assert not FeatureStore.open(new_output).is_complete()
        with pytest.raises(ValueError, match="incomplete"):
            open_features(new_output)
        shutil.rmtree(new_output)


# -------------------------------------------------------------------------------------- Python API
def api_cases() -> list[tuple[str, Callable[[Path, Path], Any], type[BaseException], str]]:
    def model(w: Path):
        from rocketstream.core import load

        return load(w / "m.json")

    def edited_dict(w: Path) -> dict:
        obj = to_dict(model(w))
        obj["arrays"]["biases"]["data"] = obj["arrays"]["biases"]["data"][::-1]
        return obj

    return [
        ("api-transform-2d", lambda w, c: transform_to_zarr(data()[:, 0], model(w), c / "o.zarr"), InputError,
         r"must be 3-D"),
        ("api-transform-object-dtype", lambda w, c: transform_to_zarr(data().astype(object), model(w),
                                                                      c / "o.zarr"),
         InputError, r"real numbers .*object"),
        ("api-fit-empty", lambda w, c: fit(np.empty((0, C, L), np.float32)), InputError, r"has no samples"),
        ("api-fit-short", lambda w, c: fit(data(length=5)), InputError, r"at least 9"),
        ("api-xarray-wrong-dims", lambda w, c: fit(xr.DataArray(data(), dims=("a", "b", "c"))), InputError,
         r"expected \('sample', 'channel', 'time'\)"),
        ("api-dataset-missing-variable", lambda w, c: fit(xr.Dataset({"v": (("sample", "channel", "time"),
                                                                               data())}), variable="w"),
         InputError, r"variable 'w' not in the Dataset"),
        ("api-model-dict-edited", lambda w, c: from_dict(edited_dict(w)), ModelFileError,
         r"checksum mismatch"),
        ("api-open-features-incomplete", lambda w, c: open_features(w / "incomplete.zarr"), ValueError,
         r"incomplete \(2 of 3 chunks written\)"),
        ("api-open-features-missing", lambda w, c: open_features(w / "none.zarr"), FileNotFoundError,
         r"no features store at"),
        ("api-store-model-not-a-store", lambda w, c: load_store_model(w / "x.zarr"), ValueError,
         r"not a rocketstream features store"),
        ("api-ridge-tampered", lambda w, c: RidgeHead.load(tampered_head(w, c)), ModelFileError,
         r"fails its sha256 check"),
        ("api-softmax-load-ridge", lambda w, c: SoftmaxHead.load(w / "head.npz"), ModelFileError,
         r"holds a 'ridge' head, expected 'softmax'"),
        ("api-checkpoint-tampered", lambda w, c: load_checkpoint(tampered_checkpoint(w, c)), CheckpointError,
         r"fails its sha256 check"),
        ("api-softmax-label-count", lambda w, c: train_softmax(FeatureStore.open(w / "f.zarr").features,
                                                              np.zeros(3), epochs=1),
         InputError, r"3 entries but the features have 60 rows"),
        ("api-transform-existing", lambda w, c: run_transform(str(w / "arr.zarr"), model(w), w / "f.zarr"),
         FileExistsError, r"already exists"),
    ]


@pytest.mark.parametrize(("name", "call", "exc", "pattern"), api_cases(), ids=[c[0] for c in api_cases()])
def test_api_bad_input(ws, name, call, exc, pattern):
    case = ws / "cases" / name
    case.mkdir()
    before = tree_hash(ws, skip=case)
    with pytest.raises(exc, match=pattern):
        call(ws, case)
    assert tree_hash(ws, skip=case) == before, "existing files changed"
    assert not (case / "o.zarr").exists()


def test_corpus_size():
    assert len(CLI_CASES) + len(MID_RUN) + len(api_cases()) >= 20
    assert os.path.basename(__file__) == "test_bad_input_corpus.py"
