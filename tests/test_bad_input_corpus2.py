"""A second corpus of bad inputs: paths, stores, model and head files, flags and labels.

Like ``test_bad_input_corpus.py``, every case runs the CLI in-process (``main(argv)``) on a shared
workspace of good inputs and outputs, and must exit with code 2 and exactly one line on stderr
(``rocketstream <command>: error: <message>``, no traceback, no warning) whose message names the
problem and the fix (a pattern per case; an option the message tells the user to pass must be an
option of that command). Nothing on disk may change: a sha256 of every path and file of the workspace
is the same before and after (only the case's own scratch directory, where its bad inputs are built,
is left out), and the case's output is either absent afterwards or, when it existed before (the
``--overwrite`` and ``--resume`` cases), byte for byte the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import fit, open_features, run_transform, transform_to_zarr
from rocketstream.api.predict import predict
from rocketstream.cli.main import build_parser, main
from rocketstream.core import InputError, load, save
from rocketstream.errors import (
    IdentityMismatchError,
    IntegrityError,
    MissingChunkError,
    PreflightError,
    UnsafeOutputError,
)
from rocketstream.heads import RidgeHead
from rocketstream.storage import FeatureStore

N, C, L, ROWS = 60, 2, 50, 20
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
DEAD_SCHEDULER = "tcp://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Good inputs and outputs that no bad case may touch."""
    root = tmp_path_factory.mktemp("corpus2")
    x = make_data(N, C, L, seed=11)
    write_zarr(root / "x.zarr", x, ROWS, group_var="X")  # group: X (sample, channel, time) and label
    write_zarr(root / "arr.zarr", x, ROWS)  # a bare array
    params = fit(x, num_features=168, random_state=0)
    other = fit(x, num_features=168, random_state=1)
    save(params, root / "m.json")
    save(other, root / "m_other.json")
    run_transform(str(root / "x.zarr"), params, root / "f.zarr", variable="X", scheduler="synchronous")
    run_transform(str(root / "x.zarr"), other, root / "f_other.zarr", variable="X", scheduler="synchronous")
    labels = np.arange(N) % 3
    np.save(root / "y.npy", labels)
    RidgeHead().fit(FeatureStore.open(root / "f.zarr").features, labels).save(root / "head.npz")
    RidgeHead().fit(FeatureStore.open(root / "f_other.zarr").features, labels).save(root / "head_other.npz")
    predict(str(root / "x.zarr"), params, str(root / "head.npz"), root / "p.zarr", variable="X",
            scheduler="synchronous")
    theirs = zarr.open_group(str(root / "theirs.zarr"), mode="w")  # somebody's Zarr store
    theirs.create_array("temperature", shape=(5,), dtype="float64")[:] = 21.5
    (root / "plain_dir").mkdir()
    (root / "plain_dir" / "notes.txt").write_text("not a zarr store")
    (root / "notes.txt").write_text("somebody's notes")
    (root / "cases").mkdir()
    return root


def snapshot(path: Path) -> str:
    """sha256 of a path as it is on disk: a link's target, a file's bytes, a directory's whole tree."""
    h = hashlib.sha256()
    if path.is_symlink():
        h.update(b"link:" + os.readlink(path).encode())
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_symlink():
                h.update(b"link:" + os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    elif path.is_file():
        h.update(path.read_bytes())
    elif path.exists():
        h.update(f"special:{path.stat().st_mode}".encode())
    return h.hexdigest()


def tree_hash(root: Path, skip: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p == skip or skip in p.parents:
            continue
        h.update(str(p.relative_to(root)).encode())
        if p.is_symlink():
            h.update(b"link:" + os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- builders
def cp(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)
    return dst


def link(c: Path, name: str, target: Path) -> str:
    os.symlink(target, c / name)
    return str(c / name)


def npy(c: Path, name: str, arr: np.ndarray) -> str:
    np.save(c / name, arr, allow_pickle=arr.dtype == object)
    return str(c / name)


def text(c: Path, name: str, content: str | bytes) -> str:
    (c / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return str(c / name)


def dev_null() -> str:
    """/dev/null, if it still is the device (a run of an unguarded rocketstream can replace it with a
    regular file, which changes what these cases mean)."""
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        pytest.skip("/dev/null is not a character device on this machine")
    return "/dev/null"


def fifo(c: Path, name: str) -> str:
    """A special file to write to (never a real device: a defect must not be able to destroy one)."""
    os.mkfifo(c / name)
    return str(c / name)


def directory(c: Path, name: str) -> str:
    (c / name).mkdir()
    return str(c / name)


def without_chunk(w: Path, c: Path, src: str, key: str) -> str:
    """A copy of the Zarr input ``src`` with one chunk file deleted."""
    store = cp(w / src, c / src)
    (store / key).unlink()
    return str(store)


def uneven_input(c: Path, missing: str, rows: int = 25, time_chunk: int | None = None) -> str:
    """A group whose X is chunked by ``rows`` samples (and ``time_chunk`` points), one chunk deleted."""
    write_zarr(c / "u.zarr", make_data(N, C, L, seed=11), rows, time_chunk=time_chunk, group_var="X")
    (c / "u.zarr" / "X" / missing).unlink()
    return str(c / "u.zarr")


def group(c: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    g = zarr.open_group(str(c / name), mode="w")
    for key, values in arrays.items():
        g.create_array(key, shape=values.shape, dtype=values.dtype)[...] = values
    return str(c / name)


def zero_samples(c: Path) -> str:
    zarr.create_array(str(c / "zero.zarr"), shape=(0, C, L), chunks=(ROWS, C, L), dtype="float32")
    return str(c / "zero.zarr")


def damaged_features(w: Path, c: Path, how: str, index: int) -> str:
    """A copy of f.zarr with features chunk ``index`` flipped, truncated or deleted."""
    store = cp(w / "f.zarr", c / f"{how}.zarr")
    chunk = store / "features" / "c" / str(index) / "0"
    raw = bytearray(chunk.read_bytes())
    if how == "flipped":
        raw[7] ^= 0x01
        chunk.write_bytes(bytes(raw))
    elif how == "truncated":
        chunk.write_bytes(bytes(raw[:10]))
    else:
        chunk.unlink()
    return str(store)


def stripped_features(w: Path, c: Path) -> str:
    """A copy of f.zarr whose ``rocketstream`` attributes were removed."""
    store = cp(w / "f.zarr", c / "stripped.zarr")
    meta = json.loads((store / "zarr.json").read_text())
    del meta["attributes"]["rocketstream"]
    (store / "zarr.json").write_text(json.dumps(meta))
    return str(store)


def resumable(w: Path, c: Path, chunk: int = 0) -> str:
    """A copy of f.zarr (made from x.zarr) with one chunk left to do."""
    store = cp(w / "f.zarr", c / "f.zarr")
    FeatureStore.open(store, mode="r+").reset([chunk])
    return str(store)


def changed_rows(w: Path, c: Path) -> list[str]:
    """A store made from a copy of x.zarr, chunk 0 left to do; then a row of done chunk 2 changes."""
    cp(w / "x.zarr", c / "x.zarr")
    run_transform(str(c / "x.zarr"), load(w / "m.json"), c / "f.zarr", variable="X", scheduler="synchronous")
    FeatureStore.open(c / "f.zarr", mode="r+").reset([0])
    g = zarr.open_group(str(c / "x.zarr"), mode="r+")
    g["X"][45] = g["X"][45] + 1.0
    return ["transform", str(c / "x.zarr"), "--variable", "X", "--model", "m.json", "--output",
            str(c / "f.zarr"), "--resume"]


def tilde_paths(model: str) -> Builder:
    """~ is the case directory (see the test), holding links to the workspace's input and model."""

    def build(w: Path, c: Path) -> list[str]:
        link(c, "x.zarr", w / "x.zarr")
        link(c, "m.json", w / "m.json")
        return tf("~/x.zarr", "--variable", "X", "--overwrite", model=model, out="~/x.zarr///")

    return build


def labels_missing_chunk(c: Path) -> str:
    arr = zarr.create_array(str(c / "labels.zarr"), shape=(N,), chunks=(ROWS,), dtype="int64")
    arr[:] = np.arange(N) % 3
    (c / "labels.zarr" / "c" / "1").unlink()
    return str(c / "labels.zarr")


def labels_array_zarr(c: Path, n: int) -> str:
    arr = zarr.create_array(str(c / "labels.zarr"), shape=(n,), chunks=(ROWS,), dtype="int64")
    arr[:] = np.arange(n) % 3 + 1  # no chunk equal to the fill value (Zarr would not store it)
    return str(c / "labels.zarr")


def tf(src: str, *extra: str, model: str = "m.json", out: str | None = None) -> list[str]:
    """``transform`` with relative paths (the cases run in the workspace)."""
    return ["transform", src, *(["--variable", "X"] if src == "x.zarr" else []), "--model", model,
            "--output", out or "never.zarr", *extra]


def pr(c: Path, *extra: str, src: str = "x.zarr", head: str = "head.npz", out: str | None = None,
       model: str = "m.json") -> list[str]:
    return ["predict", src, *(["--variable", "X"] if src == "x.zarr" else []), "--model", model, "--head",
            head, "--output", out or str(c / "p.zarr"), *extra]


def tr(c: Path, *extra: str, features: str = "f.zarr", labels: str | None = "y.npy",
       out: str | None = None) -> list[str]:
    return ["train", features, *(["--labels", labels] if labels else []), "--output",
            out or str(c / "h.npz"), *extra]


Builder = Callable[[Path, Path], list[str]]


def case(name: str, build: Builder, pattern: str, *, marks: Any = ()) -> Any:
    """One bad input: its builder (workspace, scratch dir) -> argv, and the pattern its message must match."""
    return pytest.param(name, build, pattern, marks=list(marks), id=name)


SOFTMAX = ("--head", "softmax", "--epochs", "1", "--batch-size", "16")

PATHS = [
    case("path-relative-trailing-slashes", lambda w, c: tf("./x.zarr/", "--variable", "X", "--overwrite",
                                                           out="x.zarr/"),
         r"the output /\S+/x\.zarr is the input /\S+/x\.zarr; writing it would destroy the input: choose an "
         r"output path outside it"),
    case("path-tilde-output-is-input", tilde_paths("m.json"),
         r"the output /\S+/x\.zarr is the input /\S+/x\.zarr; writing it would destroy the input"),
    case("path-tilde-model", tilde_paths("~/m.json"),
         r"the output /\S+/x\.zarr is the input /\S+/x\.zarr; writing it would destroy the input"),
    case("path-tilde-missing-parent", lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model",
                                                    "~/nodir/m.json"],
         r"directory /\S+/nodir does not exist; create it first"),
    case("path-output-is-the-model", lambda w, c: tf("x.zarr", out="m.json"),
         r"the output /\S+/m\.json is the model file /\S+/m\.json; writing it would destroy the model file"),
    case("path-output-contains-the-input", lambda w, c: pr(c, "--overwrite", out="."),
         r"the output /\S+ contains the input /\S+/x\.zarr; writing it would destroy the input: choose an "
         r"output path outside it"),
    case("path-output-contains-the-model", lambda w, c: tf("x.zarr", "--overwrite", out="."),
         r"the output /\S+ contains the model file /\S+/m\.json; writing it would destroy the model file"),
    case("path-output-is-the-head", lambda w, c: pr(c, "--overwrite", out="head.npz"),
         r"the output /\S+/head\.npz is the head /\S+/head\.npz; writing it would destroy the head"),
    case("path-output-inside-the-head", lambda w, c: pr(c, out="head.npz/p.zarr"),
         r"the output /\S+/head\.npz/p\.zarr is inside the head /\S+/head\.npz"),
    case("path-head-output-is-the-labels",
         lambda w, c: tr(c, "--overwrite", labels=group(c, "lab.npz", {"label": np.arange(N) % 3}) + ":label",
                         out=str(c / "lab.npz")),
         r"the head file /\S+/lab\.npz is the labels /\S+/lab\.npz; writing it would destroy the labels"),
    case("path-head-output-inside-the-labels", lambda w, c: tr(c, labels="x.zarr:label",
                                                               out="x.zarr/label/h.npz"),
         r"the head file /\S+/x\.zarr/label/h\.npz is inside the labels /\S+/x\.zarr"),
    case("path-checkpoint-dir-contains-the-labels",
         lambda w, c: tr(c, *SOFTMAX, "--checkpoint-dir", str(c), labels=str(cp(w / "y.npy", c / "y.npy"))),
         r"the checkpoint directory /\S+ contains the labels /\S+/y\.npy; writing it would destroy the "
         r"labels"),
    case("path-output-symlink-to-the-input", lambda w, c: pr(c, out=link(c, "p.zarr", w / "x.zarr")),
         r"the output /\S+/x\.zarr is the input /\S+/x\.zarr"),
    case("path-model-symlink-into-the-input",
         lambda w, c: ["fit", "arr.zarr", "--model", link(c, "m.json", w / "arr.zarr" / "zarr.json"),
                       "--overwrite"],
         r"the model file /\S+/arr\.zarr/zarr\.json is inside the input /\S+/arr\.zarr"),
    case("path-transform-missing-parent", lambda w, c: tf("x.zarr", out=str(c / "nodir" / "o.zarr")),
         r"directory /\S+/nodir does not exist; create it first"),
    case("path-predict-missing-parent", lambda w, c: pr(c, out=str(c / "nodir" / "p.zarr")),
         r"directory /\S+/nodir does not exist; create it first"),
    case("path-output-under-a-file", lambda w, c: tf("x.zarr", out="y.npy/o.zarr"),
         r"^(?!.*Errno).*y\.npy.*(is a file|not a directory).*(choose|give|create)"),
    case("path-model-under-a-file",
         lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model", text(c, "plain.txt", "x") + "/m.json"],
         r"^(?!.*Errno).*plain\.txt.*(is a file|not a directory).*(choose|give|create)"),
    case("path-file-url-output-inside-input",
         lambda w, c: tf(f"file://{w}/x.zarr", "--variable", "X", out=f"file://{w}/x.zarr/X/f.zarr"),
         r"the output /\S+/x\.zarr/X/f\.zarr is inside the input /\S+/x\.zarr"),
    case("path-file-url-input-missing", lambda w, c: tf(f"file://{w}/nope.zarr", out=str(c / "o.zarr")),
         r"input not found: /\S+/nope\.zarr; give a Zarr store path or an fsspec URL"),
]

STORES = [
    case("store-missing-chunk-bare-array",
         lambda w, c: tf(without_chunk(w, c, "arr.zarr", "c/2/0/0"), out=str(c / "o.zarr")),
         r"chunk c/2/0/0 \(samples 40-59\) of the input /\S+/arr\.zarr is missing from its store.*restore "
         r"the chunk.*--fill-missing-chunks"),
    case("store-missing-last-partial-chunk",
         lambda w, c: pr(c, "--variable", "X", src=uneven_input(c, "c/2/0/0")),
         r"chunk c/2/0/0 \(samples 50-59\) of the input /\S+/u\.zarr is missing.*--fill-missing-chunks"),
    case("store-missing-chunk-time-chunked",
         lambda w, c: tf(uneven_input(c, "c/1/0/1", time_chunk=25), "--variable", "X", out=str(c / "o.zarr")),
         r"chunk c/1/0/1 \(samples 25-49\) of the input /\S+/u\.zarr is missing.*--fill-missing-chunks"),
    case("store-group-without-the-variable",
         lambda w, c: tf(group(c, "g.zarr", {"other": np.zeros(N)}), "--variable", "X"),
         r"variable 'X' not found in /\S+/g\.zarr; it holds other \(60,\) float64"),
    case("store-group-with-no-arrays", lambda w, c: pr(c, src=group(c, "g.zarr", {})),
         r"/\S+/g\.zarr is a Zarr group holding no arrays; name the \(sample, channel, time\) array with "
         r"--variable"),
    case("store-features-store-as-series", lambda w, c: pr(c, src="f.zarr"),
         r"f\.zarr is a rocketstream features store, not \(sample, channel, time\) series; give the series "
         r"it was made from, or train a head on them with `rocketstream train`"),
    case("store-predictions-store-as-series", lambda w, c: tf("p.zarr", out=str(c / "o.zarr")),
         r"p\.zarr is a rocketstream predictions store, not \(sample, channel, time\) series; .*"
         r"`rocketstream evaluate`"),
    case("store-zero-samples-transform", lambda w, c: tf(zero_samples(c), out=str(c / "o.zarr")),
         r"has no samples \(shape \(0, 2, 50\)\); give at least one series"),
    case("store-zero-samples-predict", lambda w, c: pr(c, src=zero_samples(c)),
         r"has no samples \(shape \(0, 2, 50\)\); give at least one series"),
    case("store-features-flipped-byte", lambda w, c: tr(c, features=damaged_features(w, c, "flipped", 2)),
         r"features store /\S+/flipped\.zarr: chunk 2 \(samples 40-59\) cannot be read .*it is damaged; "
         r"recompute it with `rocketstream transform .*--resume`"),
    case("store-features-truncated-chunk",
         lambda w, c: tr(c, features=damaged_features(w, c, "truncated", 0)),
         r"chunk 0 \(samples 0-19\) cannot be read .*it is damaged; recompute it .*--resume"),
    case("store-features-chunk-file-deleted",
         lambda w, c: tr(c, features=damaged_features(w, c, "deleted", 1)),
         r"chunk 1 \(samples 20-39\) does not match its sha256 \(the chunk was altered or corrupted\); "
         r"recompute it"),
    case("store-features-attrs-removed-train", lambda w, c: tr(c, features=stripped_features(w, c)),
         r"/\S+/stripped\.zarr is not a rocketstream features store .*give a store made by "
         r"`rocketstream transform`"),
    case("store-features-attrs-removed-info", lambda w, c: ["info", stripped_features(w, c)],
         r"/\S+/stripped\.zarr is not a rocketstream features store .*`rocketstream transform`"),
    case("store-predictions-given-to-train", lambda w, c: tr(c, features="p.zarr"),
         r"/\S+/p\.zarr is a (rocketstream )?predictions store"),
    case("store-resume-from-another-input",
         lambda w, c: tf(npy(c, "other.npy", make_data(N, C, L, seed=12)), "--resume", out=resumable(w, c)),
         r"the features in /\S+/f\.zarr were made from /\S+/x\.zarr variable 'X' \(60, 2, 50\) float32 but "
         r"the input given is /\S+/other\.npy \(60, 2, 50\) float32 .*resume needs the same input"),
    case("store-resume-same-path-changed-rows", changed_rows,
         r"the input rows 40-59 \(chunk 2\) differ from those the features in /\S+/f\.zarr were computed "
         r"from .*restore it, or use .*--overwrite"),
]


MODELS = [
    case("model-head-of-another-model", lambda w, c: pr(c, head="head_other.npz"),
         r"the head /\S+/head_other\.npz was trained on the features of model \w+, but the model "
         r"/\S+/m\.json is model \w+ \(seed 0\); .*use the model the head's features came from"),
    case("model-head-is-a-directory", lambda w, c: pr(c, head=directory(c, "hdir.npz")),
         r"hdir\.npz.* is a directory.*rocketstream train"),
    case("model-path-is-a-directory", lambda w, c: tf("x.zarr", model=directory(c, "mdir"), out=str(c / "o")),
         r"mdir.* is a directory.*rocketstream fit"),
    case("model-dir-as-fit-output", lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model",
                                                  directory(c, "mdir"), "--overwrite"],
         r"/\S+/mdir is a directory, not a model file; refusing to replace it: give a file path"),
    case("model-dev-null-as-model", lambda w, c: tf("x.zarr", model=dev_null(), out=str(c / "o.zarr")),
         r"model file /dev/null is not valid JSON"),
    case("special-file-as-output", lambda w, c: pr(c, "--overwrite", out=fifo(c, "dev")),
         r"output /\S+/dev is a device or special file; refusing to replace it: choose another output"),
    case("model-empty-file", lambda w, c: tf("x.zarr", model=text(c, "empty.json", ""), out=str(c / "o")),
         r"model file /?\S*empty\.json is not valid JSON .*it may be truncated"),
    case("model-json-not-a-model",
         lambda w, c: tf("x.zarr", model=text(c, "notmodel.json", json.dumps({"hello": [1, 2]})),
                         out=str(c / "o")),
         r"notmodel\.json.*not a rocketstream (model|parameters) file.*rocketstream fit"),
    case("model-overwrite-somebodys-zarr", lambda w, c: pr(c, "--overwrite", out="theirs.zarr"),
         r"output /\S+/theirs\.zarr is a Zarr store not made by rocketstream; refusing to delete it"),
    case("model-overwrite-other-kind-of-store", lambda w, c: tf("x.zarr", "--overwrite", out="p.zarr"),
         r"output /\S+/p\.zarr is a rocketstream predictions store, not a features store; refusing"),
    case("model-overwrite-plain-file", lambda w, c: pr(c, "--overwrite", out="notes.txt"),
         r"output /\S+/notes\.txt is a file, not a rocketstream predictions store; refusing to replace it"),
    case("model-overwrite-ordinary-directory", lambda w, c: pr(c, "--overwrite", out="plain_dir"),
         r"output /\S+/plain_dir is a directory that is not a rocketstream store; refusing to delete it"),
    case("model-head-output-is-a-directory", lambda w, c: tr(c, "--overwrite", out=directory(c, "hd.npz")),
         r"/\S+/hd\.npz is a directory, not a head file; refusing to replace it: give a file path"),
]

FLAGS = [
    case("flag-chunk-size-zero", lambda w, c: tf("x.zarr", "--chunk-size", "0"),
         r"argument --chunk-size: must be at least 1, got 0"),
    case("flag-chunk-size-negative", lambda w, c: pr(c, "--chunk-size", "-1"),
         r"argument --chunk-size: must be at least 1, got -1"),
    case("flag-chunk-size-not-a-number", lambda w, c: tf("x.zarr", "--chunk-size", "abc"),
         r"argument --chunk-size: not an integer: 'abc'"),
    case("flag-device-cuda-without-gpu", lambda w, c: tf("x.zarr", "--device", "cuda", out=str(c / "o")),
         r"device cuda cannot be used on this machine: CUDA is not available.*pass --device cpu",
         marks=[NO_GPU]),
    case("flag-device-nonsense", lambda w, c: pr(c, "--device", "nonsense"),
         r"device nonsense cannot be used .*'nonsense' is not a torch device.*pass --device cpu"),
    case("flag-device-cuda-9", lambda w, c: tf("x.zarr", "--device", "cuda:9", out=str(c / "o.zarr")),
         r"device cuda:9 cannot be used .*(CUDA is not available|does not exist).*pass --device cpu"),
    case("flag-scheduler-nothing-listening",
         lambda w, c: tf("x.zarr", "--resume", "--scheduler", DEAD_SCHEDULER, out=resumable(w, c, 1)),
         r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:9 .*check the address"),
    case("flag-scheduler-bogus", lambda w, c: pr(c, "--scheduler", "bogus"),
         r"unknown scheduler 'bogus': use threads, processes, synchronous, or a dask\.distributed address"),
    case("flag-memory-budget-zero", lambda w, c: tf("x.zarr", "--memory-budget", "0"),
         r"argument --memory-budget: memory size must be positive, got '0'"),
    case("flag-memory-budget-not-a-size", lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model",
                                                        str(c / "m.json"), "--memory-budget", "abc"],
         r"argument --memory-budget: not a memory size: 'abc' \(e\.g\. 256MB, 2GiB\)"),
    case("flag-num-features-zero", lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model",
                                                 str(c / "m.json"), "--num-features", "0"],
         r"argument --num-features: must be at least 1, got 0"),
    case("flag-fit-seed-negative", lambda w, c: ["fit", "x.zarr", "--variable", "X", "--model",
                                                 str(c / "m.json"), "--seed", "-1"],
         r"must be between 0 and 2\*\*32 - 1, got -1"),
    case("flag-softmax-seed-negative", lambda w, c: tr(c, *SOFTMAX, "--seed", "-1"),
         r"--seed.*(non-negative|at least 0|between 0)"),
    case("flag-train-resume-and-overwrite", lambda w, c: tr(c, *SOFTMAX, "--resume", "--overwrite"),
         r"resume and overwrite exclude each other: resume continues a training run"),
    case("flag-predict-resume-and-overwrite", lambda w, c: pr(c, "--resume", "--overwrite"),
         r"resume and overwrite exclude each other: resume finishes a store, overwrite replaces it"),
    case("flag-unknown-option", lambda w, c: tf("x.zarr", "--bogus"),
         r"unrecognized arguments: --bogus.*rocketstream transform --help"),
]

LABELS = [
    case("labels-too-many-zarr", lambda w, c: tr(c, labels=labels_array_zarr(c, N + 1)),
         r"labels has 61 entries but the features have 60 rows; pass exactly one label per feature row"),
    case("labels-too-few-evaluate", lambda w, c: ["evaluate", "p.zarr", "--labels",
                                                  npy(c, "y.npy", np.arange(N - 1) % 3)],
         r"60 predictions but 59 labels; pass the labels of the predicted samples, in order"),
    case("labels-spec-missing-array-evaluate", lambda w, c: ["evaluate", "p.zarr", "--labels", "x.zarr:nope"],
         r"no 'nope' array in /\S+/x\.zarr; it holds \['X', 'label'\]: name one as /\S+/x\.zarr:NAME"),
    case("labels-group-without-label", lambda w, c: tr(c, labels=group(c, "g.zarr", {"y": np.zeros(N)})),
         r"no 'label' array in /\S+/g\.zarr; it holds \['y'\]: name one as /\S+/g\.zarr:NAME"),
    case("labels-object-npy", lambda w, c: tr(c, labels=npy(c, "y.npy", np.array([1, "a", None] * 20,
                                                                                  dtype=object))),
         r"cannot read labels from /\S+/y\.npy \(Object arrays cannot be loaded.*plain \(non-object\) array"),
    case("labels-missing-chunk-train", lambda w, c: tr(c, labels=labels_missing_chunk(c)),
         r"chunk c/1 \(samples 20-39\) of the .*labels /\S+/labels\.zarr is missing"),
    case("labels-missing-chunk-evaluate", lambda w, c: ["evaluate", "p.zarr", "--labels",
                                                        labels_missing_chunk(c)],
         r"chunk c/1 \(samples 20-39\) of the .*labels /\S+/labels\.zarr is missing"),
    case("labels-empty-file-train", lambda w, c: tr(c, labels=text(c, "empty.npy", b"")),
         r"empty\.npy.*(is empty|cannot read).*(save|give|pass)"),
    case("labels-empty-file-evaluate", lambda w, c: ["evaluate", "p.zarr", "--labels",
                                                     text(c, "empty.npy", b"")],
         r"empty\.npy.*(is empty|cannot read).*(save|give|pass)"),
]

CLI_CASES = PATHS + STORES + MODELS + FLAGS + LABELS


# ------------------------------------------------------------------------------------------- running
def run_cli(argv: list[str]) -> tuple[Any, str, str]:
    """(exit code, stdout, stderr) as the console script would give them; an escaping exception is
    reported as its traceback on stderr."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except Exception:  # noqa: BLE001 - what the user would see
            code = 1
            err.write(traceback.format_exc())
    return code, out.getvalue(), err.getvalue()


def outputs_of(argv: list[str], root: Path) -> list[Path]:
    """The paths the command would write (its output, a softmax checkpoint directory)."""
    flags = {"fit": ["--model"], "transform": ["--output"], "predict": ["--output"],
             "train": ["--output", "--checkpoint-dir"]}.get(argv[0], [])
    found = []
    for flag in flags:
        if flag not in argv:
            continue
        value = argv[argv.index(flag) + 1]
        value = value[len("file://"):] if value.startswith("file://") else value
        path = root / Path(os.path.expanduser(value))
        if argv[0] == "train" and flag == "--output" and path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        found.append(path)
    return found


def options_of(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {s for action in sub._actions for s in action.option_strings}


def options_suggested(message: str) -> set[str]:
    """Options the message tells the user to pass (not inside a quoted `command`, not the unknown ones
    argparse echoes)."""
    said = re.sub(r"`[^`]*`", "", message).split("unrecognized arguments:")[0]
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", said))


def quick_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at DEAD_SCHEDULER: give up connecting after 1 s rather than rocketstream's 20 s
    (the message and the exit code are the same)."""
    import distributed

    real = distributed.Client
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: real(*a, **{**k, "timeout": "1s"}))


@pytest.mark.parametrize(("name", "build", "pattern"), CLI_CASES)
def test_cli_bad_input(ws, monkeypatch, name, build, pattern):
    case_dir = ws / "cases" / name
    case_dir.mkdir()
    monkeypatch.chdir(ws)  # relative paths are relative to the workspace
    monkeypatch.setenv("HOME", str(case_dir))  # and ~ is the case's scratch directory
    argv = build(ws, case_dir)
    if DEAD_SCHEDULER in argv:
        quick_connect(monkeypatch)
    outputs = outputs_of(argv, ws)
    before = {p: (os.path.lexists(p), snapshot(p) if os.path.lexists(p) else None) for p in outputs}
    tree = tree_hash(ws, skip=case_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rocketstream {argv[0]}: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    unknown = options_suggested(lines[0]) - options_of(argv[0])
    assert not unknown, f"the message suggests {sorted(unknown)}, which `{argv[0]}` does not accept"
    shown = [w for w in caught if "rocketstream" in str(w.filename) and w.category is not ResourceWarning]
    assert not shown, [str(w.message) for w in shown]  # the console script would print them on stderr
    assert tree_hash(ws, skip=case_dir) == tree, "files in the workspace changed"
    for path, (existed, digest) in before.items():
        if existed:
            assert snapshot(path) == digest, f"the existing output {path} changed"
        else:
            assert not os.path.lexists(path), f"{path} was created"
            assert not os.path.lexists(str(path).rstrip("/") + ".lock"), f"a lock beside {path} remains"


# -------------------------------------------------------------------------------------- Python API
def api_cases() -> list[Any]:
    m = lambda w: load(w / "m.json")  # noqa: E731

    def head_on(n_features: int) -> RidgeHead:
        rng = np.random.default_rng(0)
        return RidgeHead().fit(rng.standard_normal((N, n_features)).astype("float32"), np.arange(N) % 3)

    def p(name, call, exc, pattern):
        return pytest.param(name, call, exc, pattern, id=name)

    return [
        p("api-transform-missing-chunk",
          lambda w, c: transform_to_zarr(without_chunk(w, c, "arr.zarr", "c/1/0/0"), m(w), c / "o.zarr"),
          MissingChunkError, r"chunk c/1/0/0 \(samples 20-39\) of the input .*arr\.zarr is missing.*"
          r"fill_missing=True"),
        p("api-fit-missing-chunk",
          lambda w, c: fit(uneven_input(c, "c/0/0/0"), variable="X", num_features=168, random_state=0),
          MissingChunkError, r"chunk c/0/0/0 \(samples 0-24\)"),
        p("api-fit-zero-samples", lambda w, c: fit(zero_samples(c)), InputError,
          r"has no samples \(shape \(0, 2, 50\)\)"),
        p("api-fit-negative-seed", lambda w, c: fit(str(w / "arr.zarr"), random_state=-1), ValueError,
          r"random_state must be between 0 and 2\*\*32 - 1, got -1"),
        p("api-resume-another-input",
          lambda w, c: run_transform(str(w / "arr.zarr"), m(w), resumable(w, c), resume=True),
          IdentityMismatchError, r"made from /\S+/x\.zarr variable 'X' .* but the input given is "
          r"/\S+/arr\.zarr \(60, 2, 50\) float32 \(location differs\)"),
        p("api-overwrite-predictions-store",
          lambda w, c: run_transform(str(w / "x.zarr"), m(w), w / "p.zarr", variable="X", overwrite=True),
          UnsafeOutputError, r"p\.zarr is a rocketstream predictions store, not a features store"),
        p("api-output-symlink-to-input",
          lambda w, c: transform_to_zarr(str(w / "x.zarr"), m(w), link(c, "o.zarr", w / "x.zarr"),
                                         variable="X", overwrite=True),
          UnsafeOutputError, r"the output /\S+/x\.zarr is the input /\S+/x\.zarr"),
        p("api-transform-chunk-size-zero",
          lambda w, c: run_transform(str(w / "arr.zarr"), m(w), c / "o.zarr", chunk_size=0),
          ValueError, r"chunk_size must be a positive number of samples, got 0"),
        p("api-transform-device-cuda-9",
          lambda w, c: run_transform(str(w / "arr.zarr"), m(w), c / "o.zarr", device="cuda:9"),
          PreflightError, r"device cuda:9 cannot be used"),
        p("api-transform-dead-scheduler",
          lambda w, c: run_transform(str(w / "arr.zarr"), m(w), c / "o.zarr", scheduler=DEAD_SCHEDULER),
          PreflightError, r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:9"),
        p("api-open-features-attrs-removed", lambda w, c: open_features(stripped_features(w, c)), ValueError,
          r"is not a rocketstream features store"),
        p("api-open-features-flipped",
          lambda w, c: open_features(damaged_features(w, c, "flipped", 2)).compute(),
          IntegrityError, r"chunk 2 \(samples 40-59\) cannot be read"),
        p("api-ridge-fit-truncated",
          lambda w, c: RidgeHead().fit(FeatureStore.open(damaged_features(w, c, "truncated", 0)).features,
                                       np.arange(N) % 3),
          IntegrityError, r"chunk 0 \(samples 0-19\) cannot be read .*damaged"),
        p("api-ridge-fit-label-count",
          lambda w, c: RidgeHead().fit(FeatureStore.open(w / "f.zarr").verified(), np.arange(N + 2) % 3),
          InputError, r"labels has 62 entries but the features have 60 rows"),
        p("api-predict-head-of-another-model",
          lambda w, c: predict(str(w / "x.zarr"), m(w), str(w / "head_other.npz"), c / "o.zarr",
                               variable="X"),
          IdentityMismatchError, r"trained on the features of model \w+, but the model is model \w+"),
        p("api-predict-head-feature-count",
          lambda w, c: predict(str(w / "x.zarr"), m(w), head_on(84), c / "o.zarr", variable="X"),
          InputError, r"the head was trained on 84 features but the model makes 168"),
        p("api-predict-output-is-the-head",
          lambda w, c: predict(str(w / "x.zarr"), str(w / "m.json"), str(w / "head.npz"), w / "head.npz",
                               variable="X", overwrite=True),
          UnsafeOutputError, r"the output /\S+/head\.npz is the head /\S+/head\.npz"),
    ]


@pytest.mark.parametrize(("name", "call", "exc", "pattern"), api_cases())
def test_api_bad_input(ws, monkeypatch, name, call, exc, pattern):
    case_dir = ws / "cases" / name
    case_dir.mkdir()
    if "scheduler" in name:
        quick_connect(monkeypatch)
    before = tree_hash(ws, skip=case_dir)
    with pytest.raises(exc, match=pattern):
        call(ws, case_dir)
    assert tree_hash(ws, skip=case_dir) == before, "files in the workspace changed"
    assert not os.path.lexists(case_dir / "o.zarr") or (case_dir / "o.zarr").is_symlink()
    assert not list(case_dir.glob("*.lock"))


# ------------------------------------------------------------------ what works or is reported, not refused
def test_huge_chunk_size_is_the_whole_input(ws, tmp_path):
    """--chunk-size 10**12 on 60 samples works: one chunk holding every sample."""
    code, out, err = run_cli(["predict", str(ws / "x.zarr"), "--variable", "X", "--model", str(ws / "m.json"),
                              "--head", str(ws / "head.npz"), "--output", str(tmp_path / "p.zarr"),
                              "--chunk-size", str(10**12), "--no-progress"])
    assert code == 0, err
    meta = dict(zarr.open_group(str(tmp_path / "p.zarr"), mode="r").attrs)["rocketstream"]
    assert meta["complete"] is True and meta["chunk_size"] == N
    store, done = run_transform(str(ws / "arr.zarr"), load(ws / "m.json"), tmp_path / "f.zarr",
                                chunk_size=10**12, scheduler="synchronous")
    assert store.chunk_size == N and done == [0]


def test_fill_missing_chunks_reads_the_fill_value(ws, tmp_path):
    """The missing chunk refused above is read as the fill value when asked for."""
    src = without_chunk(ws, tmp_path, "arr.zarr", "c/2/0/0")
    code, _, err = run_cli(["predict", src, "--model", str(ws / "m.json"), "--head", str(ws / "head.npz"),
                            "--output", str(tmp_path / "p.zarr"), "--fill-missing-chunks", "--no-progress"])
    assert code == 0, err
    assert dict(zarr.open_group(str(tmp_path / "p.zarr"), mode="r").attrs)["rocketstream"]["complete"]


@pytest.mark.parametrize(("how", "index"), [("flipped", 2), ("truncated", 0), ("deleted", 1)])
def test_info_reports_damaged_chunks(ws, tmp_path, capsys, how, index):
    """``info`` is a report: a damaged store is described (exit 0) as incomplete, naming the chunk and
    the fix, and left as it is (train refuses the same stores above)."""
    store = Path(damaged_features(ws, tmp_path, how, index))
    before = snapshot(store)
    code, out, err = run_cli(["info", str(store), "--json"])
    assert code == 0 and not err.strip(), err
    info = json.loads(out)
    assert info["complete"] is False and info["damaged_chunks"] == [index]
    assert "--resume" in info["fix"]
    assert snapshot(store) == before


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_labels_written_with_zarr_defaults(ws, tmp_path, command):
    """Sorted labels, class 0 first: Zarr skips the all-zero chunk (write_empty_chunks=False)."""
    arr = zarr.create_array(str(tmp_path / "sorted.zarr"), shape=(N,), chunks=(ROWS,), dtype="int64")
    arr[:] = np.repeat([0, 1, 2], ROWS)
    assert not (tmp_path / "sorted.zarr" / "c" / "0").exists()
    argv = (["train", str(ws / "f.zarr"), "--output", str(tmp_path / "h.npz")] if command == "train" else
            ["evaluate", str(ws / "p.zarr")]) + ["--labels", str(tmp_path / "sorted.zarr")]
    code, _, err = run_cli(argv)
    if code == 2 and "--fill-missing-chunks" in err:  # the fix the message names must work
        code, _, err = run_cli([*argv, "--fill-missing-chunks"])
    assert code == 0, err


@pytest.mark.parametrize("command", ["predict", "transform"])
def test_file_url_model_and_head(ws, tmp_path, command):
    argv = [command, f"file://{ws}/x.zarr", "--variable", "X", "--model", f"file://{ws}/m.json", "--output",
            f"file://{tmp_path}/out.zarr", "--no-progress"]
    if command == "predict":
        argv += ["--head", f"file://{ws}/head.npz"]
    code, _, err = run_cli(argv)
    assert code == 0, err


def test_corpus_size():
    assert len(CLI_CASES) + len(api_cases()) >= 35
    assert len({c.id for c in CLI_CASES}) == len(CLI_CASES)
