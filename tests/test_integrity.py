"""Integrity: never a wrong result with exit code 0, never lost data.

One test (or more) per finding of the integrity issue, each through the CLI as a user runs it (exit code
2, one line naming the problem and the fix) and each checking that nothing on disk changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import features_info, fit, open_features, run_transform, transform_to_zarr
from rocketstream.cli.main import main
from rocketstream.core import load, save
from rocketstream.core import transform as core_transform
from rocketstream.errors import (
    IntegrityError,
    MissingChunkError,
    PreflightError,
    UnsafeOutputError,
)
from rocketstream.heads import RidgeHead
from rocketstream.storage import FeatureStore

N, C, L, ROWS = 60, 2, 50, 20


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or the file itself) with its bytes."""
    root = Path(root)
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, the one line it printed on stderr)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 2 or (len(err) == 1 and "Traceback" not in err[0]), err
    return code, err[0] if err else ""


@pytest.fixture
def ws(tmp_path):
    """x.zarr (group with X and label), a model m.json, its features f.zarr and a ridge head."""
    x = make_data(N, C, L, seed=7)
    write_zarr(tmp_path / "x.zarr", x, ROWS, group_var="X")
    params = fit(str(tmp_path / "x.zarr"), variable="X", num_features=168, random_state=0)
    save(params, tmp_path / "m.json")
    run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "f.zarr", variable="X",
                  scheduler="synchronous")
    np.save(tmp_path / "y.npy", np.arange(N) % 3)
    head = RidgeHead().fit(FeatureStore.open(tmp_path / "f.zarr").features, np.arange(N) % 3)
    head.save(tmp_path / "head.npz")
    return tmp_path, x, params


# ----------------------------------------------------------------------- 1. output = input, --overwrite
@pytest.mark.parametrize("how", ["same", "inside", "contains", "symlink"])
def test_transform_output_overlapping_input_is_refused(ws, capsys, how):
    root, _, _ = ws
    before = tree(root / "x.zarr")
    output = {"same": root / "x.zarr", "inside": root / "x.zarr" / "feats.zarr", "contains": root}[how] \
        if how != "symlink" else root / "link.zarr"
    if how == "symlink":
        os.symlink(root / "x.zarr", output)
    code, err = cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--output", output, "--overwrite")
    assert code == 2
    assert "would destroy the" in err and "choose an output path outside it" in err
    assert tree(root / "x.zarr") == before


def test_predict_and_api_output_equal_to_input_are_refused(ws, capsys):
    root, _, params = ws
    before = tree(root / "x.zarr")
    code, err = cli(capsys, "predict", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--head", root / "head.npz", "--output", root / "x.zarr", "--overwrite")
    assert code == 2 and "the output" in err and "is the input" in err
    with pytest.raises(UnsafeOutputError, match="is the input"):
        transform_to_zarr(str(root / "x.zarr"), params, root / "x.zarr", variable="X", overwrite=True)
    assert tree(root / "x.zarr") == before
    code, err = cli(capsys, "fit", root / "x.zarr", "--variable", "X", "--model", root / "x.zarr" / "m.json")
    assert code == 2 and "is inside the input" in err
    assert tree(root / "x.zarr") == before


def test_overwrite_replaces_only_rocketstream_outputs(ws, capsys):
    root, _, _ = ws
    other = root / "other.zarr"
    write_zarr(other, make_data(10, C, L), 5)  # somebody's Zarr array
    before = tree(other)
    code, err = cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--output", other, "--overwrite")
    assert code == 2 and "is a Zarr store not made by rocketstream; refusing to delete it" in err
    assert tree(other) == before
    code, err = cli(capsys, "predict", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--head", root / "head.npz", "--output", root / "f.zarr", "--overwrite")
    assert code == 2 and "is a rocketstream features store, not a predictions store" in err
    (root / "notes.txt").write_text("mine")
    code, err = cli(capsys, "fit", root / "x.zarr", "--variable", "X", "--model", root / "notes.txt",
                    "--overwrite")
    assert code == 2 and "is not a rocketstream model file; refusing" in err
    assert (root / "notes.txt").read_text() == "mine"
    (root / "weights.npz").write_bytes(b"PK\x03\x04 somebody else's archive")
    code, err = cli(capsys, "train", root / "f.zarr", "--labels", root / "y.npy", "--output",
                    root / "weights.npz", "--overwrite")
    assert code == 2 and "is not a rocketstream head file" in err
    assert (root / "weights.npz").read_bytes().startswith(b"PK")


# -------------------------------------------------------------------------------- 2. missing chunks
def test_missing_input_chunk_is_an_error(ws, capsys):
    root, x, params = ws
    (root / "x.zarr" / "X" / "c" / "1" / "0" / "0").unlink()
    code, err = cli(capsys, "fit", root / "x.zarr", "--variable", "X", "--model", root / "m2.json",
                    "--num-features", "168", "--seed", "0")
    assert code == 2 and "chunk c/1/0/0 (samples 20-39)" in err and "--fill-missing-chunks" in err
    assert not (root / "m2.json").exists()
    code, err = cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--output", root / "g.zarr")
    assert code == 2 and "chunk c/1/0/0 (samples 20-39)" in err and "is missing" in err
    assert not (root / "g.zarr").exists()  # refused before the output was created
    # the same data read with Zarr's fill-value semantics when asked for
    assert cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
               "--output", root / "g.zarr", "--fill-missing-chunks", "--no-progress")[0] == 0
    filled = x.copy()
    filled[20:40] = 0.0  # the input's fill value
    expected = core_transform(filled, params).cpu().numpy()
    assert np.array_equal(FeatureStore.open(root / "g.zarr").features[:], expected)


def test_chunk_lost_after_the_check_is_caught_where_it_is_read(ws):
    """The check also runs in the task that reads (a worker that does not see the file)."""
    root, _, params = ws
    from rocketstream.api.outofcore import open_source

    arr = open_source(str(root / "x.zarr"), "X")
    (root / "x.zarr" / "X" / "c" / "2" / "0" / "0").unlink()
    with pytest.raises(MissingChunkError, match=r"chunk c/2/0/0 \(samples 40-59\)"):
        arr.compute(scheduler="synchronous")


def test_relative_input_path_is_absolute_on_the_workers(ws, tmp_path_factory, monkeypatch):
    """A relative path given in one directory reads the same store on a worker in another one."""
    root, x, params = ws
    from distributed import Client, LocalCluster

    monkeypatch.chdir(root)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(os.chdir, str(tmp_path_factory.mktemp("elsewhere")))
        run_transform("x.zarr", params, "rel.zarr", variable="X", scheduler=client)
    got = FeatureStore.open(root / "rel.zarr")
    assert got.path == str(root / "rel.zarr")
    assert np.array_equal(got.features[:], core_transform(x, params).cpu().numpy())


# ------------------------------------------------------------------------ 3. resume with another input
def _interrupt(store_path: Path, chunks: list[int]) -> None:
    FeatureStore.open(store_path, mode="r+").reset(chunks)


def test_resume_with_another_input_is_refused(ws, capsys):
    root, x, _ = ws
    write_zarr(root / "y.zarr", make_data(N, C, L, seed=99), ROWS, group_var="X")  # same shape
    _interrupt(root / "f.zarr", [2])
    before = tree(root / "f.zarr")
    code, err = cli(capsys, "transform", root / "y.zarr", "--variable", "X", "--model", root / "m.json",
                    "--output", root / "f.zarr", "--resume")
    assert code == 2
    assert f"made from {root / 'x.zarr'}" in err and f"the input given is {root / 'y.zarr'}" in err
    assert "resume needs the same input" in err
    assert tree(root / "f.zarr") == before
    info = features_info(root / "f.zarr")
    assert info["complete"] is False and info["input"]["location"] == str(root / "x.zarr")


def test_resume_with_changed_input_rows_is_refused(ws, capsys):
    root, x, _ = ws
    _interrupt(root / "f.zarr", [2])
    g = zarr.open_group(str(root / "x.zarr"), mode="r+")
    g["X"][3] = x[3] + 1.0  # the same store, one row of a chunk already done changed
    before = tree(root / "f.zarr")
    code, err = cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
                    "--output", root / "f.zarr", "--resume")
    assert code == 2 and "input rows 0-19 (chunk 0) differ" in err and "--overwrite" in err
    assert tree(root / "f.zarr") == before


# ------------------------------------------------------------------------ 4. a head with another model
def test_head_used_with_another_model_is_refused(ws, capsys):
    root, _, _ = ws
    other = fit(str(root / "x.zarr"), variable="X", num_features=168, random_state=1)
    save(other, root / "other.json")
    code, err = cli(capsys, "predict", root / "x.zarr", "--variable", "X", "--model", root / "other.json",
                    "--head", root / "head.npz", "--output", root / "p.zarr")
    assert code == 2 and "was trained on the features of model" in err and "seed 1" in err
    assert not (root / "p.zarr").exists()
    assert cli(capsys, "predict", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
               "--head", root / "head.npz", "--output", root / "p.zarr", "--no-progress")[0] == 0


def test_cli_trained_head_records_its_model(ws, capsys):
    root, _, params = ws
    from rocketstream.core import fingerprint

    assert cli(capsys, "train", root / "f.zarr", "--labels", root / "y.npy", "--output",
               root / "h2.npz")[0] == 0
    assert RidgeHead.load(root / "h2.npz").model_fingerprint_ == fingerprint(params)


# ---------------------------------------------------------------------- 5. damaged features chunks
def _flip_bit(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_flipped_bit_in_features_is_never_learned_from(ws, capsys):
    root, _, _ = ws
    _flip_bit(root / "f.zarr" / "features" / "c" / "1" / "0")
    code, err = cli(capsys, "train", root / "f.zarr", "--labels", root / "y.npy", "--output",
                    root / "h2.npz")
    assert code == 2 and "chunk 1 (samples 20-39)" in err and "--resume" in err
    assert not (root / "h2.npz").exists()
    with pytest.raises(IntegrityError, match=r"chunk 1 \(samples 20-39\) cannot be read"):
        open_features(root / "f.zarr").compute()
    with pytest.raises(ValueError, match="checksum"):  # any Zarr reader, no rocketstream code
        xr.open_zarr(root / "f.zarr", consolidated=False)["features"].load()
    code = main(["info", str(root / "f.zarr"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["complete"] is False and info["damaged_chunks"] == [1]
    # and resume repairs it
    assert cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
               "--output", root / "f.zarr", "--resume", "--no-progress")[0] == 0
    assert features_info(root / "f.zarr")["complete"] is True


def test_truncated_or_swapped_chunks_are_named(ws, capsys):
    root, _, _ = ws
    chunk = root / "f.zarr" / "features" / "c" / "2" / "0"
    raw = chunk.read_bytes()
    chunk.write_bytes(raw[: len(raw) // 3])
    code, err = cli(capsys, "train", root / "f.zarr", "--labels", root / "y.npy", "--output",
                    root / "h2.npz")
    assert code == 2 and "chunk 2 (samples 40-59) cannot be read" in err and "damaged" in err
    # a whole valid chunk file put in the wrong place passes the crc32c but not the sha256
    chunk.write_bytes((root / "f.zarr" / "features" / "c" / "0" / "0").read_bytes())
    with pytest.raises(IntegrityError, match="chunk 2 .* does not match its sha256"):
        RidgeHead().fit(FeatureStore.open(root / "f.zarr").features, np.arange(N) % 3)


# ------------------------------------------------------------------------------- 6. smaller findings
def test_credentials_never_reach_files_messages_or_info(tmp_path, capsys):
    """An http URL with user:password@ (a real HTTP server on loopback serving the store)."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    x = make_data(N, C, L, seed=3)
    write_zarr(tmp_path / "srv" / "x.zarr", x, ROWS, group_var="X")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "srv"), **k)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    Thread(target=server.serve_forever, daemon=True).start()
    secret = "hunter2-s3cr3t"
    url = f"http://alice:{secret}@127.0.0.1:{server.server_address[1]}/x.zarr"
    try:
        assert cli(capsys, "fit", url, "--variable", "X", "--model", tmp_path / "m.json",
                   "--num-features", "168", "--seed", "0")[0] == 0
        assert cli(capsys, "transform", url, "--variable", "X", "--model", tmp_path / "m.json",
                   "--output", tmp_path / "f.zarr", "--no-progress")[0] == 0
        assert main(["info", str(tmp_path / "f.zarr")]) == 0
        assert main(["info", str(tmp_path / "m.json")]) == 0
        code, err = cli(capsys, "fit", url.replace("x.zarr", "nope.zarr"), "--model", tmp_path / "n.json")
        assert code == 2 and "alice:***" not in err and "***@127.0.0.1" in err
    finally:
        server.shutdown()
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    for p in tmp_path.rglob("*"):
        if p.is_file() and "srv" not in p.parts:
            assert secret.encode() not in p.read_bytes(), p


def test_redaction_covers_s3_keys_and_signed_urls():
    from rocketstream.storage.locations import redact, resolve

    assert redact("cannot open s3://AKIAXYZ:SECRET/abc@bucket/x.zarr") == "cannot open s3://***@bucket/x.zarr"
    assert redact("https://h/x.zarr?X-Amz-Signature=abc&v=1") == "https://h/x.zarr?X-Amz-Signature=***&v=1"
    assert resolve("s3://k:s@b/x.zarr").display == "s3://***@b/x.zarr"
    assert resolve("s3://k:s@b/x.zarr").target == "s3://k:s@b/x.zarr"
    from rocketstream.storage.lock import StoreLock

    lock = StoreLock("s3://KEY:SECRET-VALUE@bucket/f.zarr")
    assert b"SECRET-VALUE" not in lock._record() and "SECRET-VALUE" not in str(lock._refuse({}))


def test_fit_never_replaces_a_device(ws, capsys):
    """A special file (a FIFO here: a test must never risk a real device) is never replaced."""
    root, _, _ = ws
    fifo = root / "device"
    os.mkfifo(fifo)
    code, err = cli(capsys, "fit", root / "x.zarr", "--variable", "X", "--model", fifo, "--overwrite")
    assert code == 2 and "device or special file" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith((".device", "device"))) == ["device"]


def test_failed_start_keeps_the_old_output_and_makes_no_store(ws, capsys):
    root, _, _ = ws
    assert cli(capsys, "predict", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
               "--head", root / "head.npz", "--output", root / "p.zarr", "--no-progress")[0] == 0
    before = tree(root / "p.zarr")
    predict = ["predict", root / "x.zarr", "--variable", "X", "--model", root / "m.json", "--head",
               root / "head.npz", "--output", root / "p.zarr", "--overwrite"]
    code, err = cli(capsys, *predict, "--device", "cuda:7")
    assert code == 2 and "device cuda:7 cannot be used" in err and "--device cpu" in err
    code, err = cli(capsys, *predict, "--scheduler", "tcp://127.0.0.1:9")
    assert code == 2 and "cannot connect to the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "nothing listens there" in err  # refused at once, not after the client's retries
    assert tree(root / "p.zarr") == before  # the good old output was not deleted first
    transform = ["transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json", "--output",
                 root / "new.zarr"]
    assert cli(capsys, *transform, "--device", "cuda:99")[0] == 2  # no machine has it
    assert cli(capsys, *transform, "--scheduler", "tcp://127.0.0.1:9")[0] == 2
    assert not (root / "new.zarr").exists() and not (root / "new.zarr.lock").exists()


def test_chunk_size_larger_than_data_or_memory(ws, capsys):
    root, _, params = ws
    assert cli(capsys, "transform", root / "x.zarr", "--variable", "X", "--model", root / "m.json",
               "--output", root / "big.zarr", "--chunk-size", "10000000", "--no-progress")[0] == 0
    assert FeatureStore.open(root / "big.zarr").chunk_size == N  # one chunk: the whole input
    # 1e10 samples per task: terabytes, more than any machine this runs on (never materialised)
    huge = da.zeros((10**11, C, L), dtype=np.float32, chunks=(10**9, C, L))
    with pytest.raises(PreflightError, match=r"10000000000 samples per task need about .* GiB.*smaller"):
        run_transform(huge, params, root / "huge.zarr", chunk_size=10**10)
    assert not (root / "huge.zarr").exists()


def test_identity_recorded_in_the_store(ws):
    root, _, params = ws
    store = FeatureStore.open(root / "f.zarr")
    assert store.input_identity == {"location": str(root / "x.zarr"), "variable": "X", "shape": [N, C, L],
                                    "chunks": [ROWS], "dtype": "float32"}
    digests = store.group["input_sha256"][:]
    x = zarr.open_group(str(root / "x.zarr"))["X"][:]
    for i in range(3):
        want = hashlib.sha256(np.ascontiguousarray(x[i * ROWS : (i + 1) * ROWS], "<f4").tobytes()).digest()
        assert digests[i].tobytes() == want
    codecs = [type(c).__name__ for c in store.features.metadata.codecs]
    assert codecs[-1] == "Crc32cCodec"


def test_cli_runs_from_another_directory_with_relative_paths(ws):
    """The console script with relative paths and a different working directory: same features."""
    root, x, params = ws
    cmd = [sys.executable, "-m", "rocketstream.cli", "transform", "x.zarr", "--variable", "X", "--model",
           "m.json", "--output", "cwd.zarr", "--no-progress"]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = core_transform(x, params).cpu().numpy()
    assert np.array_equal(FeatureStore.open(root / "cwd.zarr").features[:], expected)
    assert load(root / "m.json").equals(params)
