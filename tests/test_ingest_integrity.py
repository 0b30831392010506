"""Ingest integrity: a killed ingest's temporaries are removed by the next one (and only stale ones),
bad chunk sizes are refused before anything is written, and every chunk is on disk, even all-zero ones."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers.data import make_data

from rocketstream.cli.main import main
from rocketstream.ingest import Collection, IngestError, write_collection

CLI = Path(sys.executable).parent / "rocketstream"


def _hidden(final: Path) -> list[str]:
    """Names of the hidden siblings ``.<final.name>.*`` of ``final``."""
    return sorted(p.name for p in final.parent.iterdir() if p.name.startswith(f".{final.name}."))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------- killed ingest
def test_killed_ingest_temp_is_removed_by_the_next_ingest(tmp_path, caplog):
    x = make_data(4000, 1, 200, seed=1)
    src, out = tmp_path / "x.npy", tmp_path / "x.zarr"
    np.save(src, x)
    with open(tmp_path / "log.txt", "wb") as log:  # the progress path: one region write per chunk
        proc = subprocess.Popen([str(CLI), "ingest", str(src), str(out), "--chunk-size", "8"], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and not _hidden(out):
                time.sleep(0.01)
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()[-2000:]
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    left = _hidden(out)
    assert len(left) == 1 and f"-{proc.pid}-" in left[0] and not out.exists()  # names its creator

    with caplog.at_level(logging.INFO, logger="rocketstream"):
        assert main(["ingest", str(src), str(out), "--no-progress"]) == 0
    assert _hidden(out) == []
    assert f"removed the stale temporary {tmp_path / left[0]}" in caplog.text
    np.testing.assert_array_equal(xr.open_zarr(out).X.values, x)


def test_remove_stale_siblings_removes_only_stale_ones(tmp_path, caplog):
    from rocketstream.storage.tempfiles import remove_stale_siblings, temp_sibling

    final = tmp_path / "m.json"  # a file output: its temporaries are files
    final.write_text("{}")
    live = temp_sibling(final)  # this process: alive
    live.write_text("partial")
    prefix, _, start, tail = live.name.rsplit("-", 3)
    host = prefix.removeprefix(".m.json.tmp-")
    dead = _dead_pid()
    stale = {
        f"{prefix}-{dead}-0-{tail}": "file",
        f".m.json.old-{host}-{dead}-{start}-{tail}": "dir",  # killed inside the rename: any tag
        ".m.json.tmp-0123abcd": "old",  # earlier versions' names, over an hour old
        ".m.json.old-4567cdef": "old",
    }
    if start != "0":  # pid start times known (Linux): our pid with another start time is a reused pid
        stale[f"{prefix}-{os.getpid()}-{int(start) + 1}-{tail}"] = "file"
    kept = [
        live.name,
        f".m.json.tmp-otherhost-{dead}-0-{tail}",  # another host: never
        ".m.json.tmp-89abcdef",  # old-style but recent
        ".m.json.tmp-0123abcz", ".m.json.tmp-0123abcd.bak", f"{prefix}-{dead}-0-{tail}x",  # not the scheme
        f".m.json.tmp-{host}-{dead}-{tail}", ".m.json.swp", ".m.json.tmp-",
        f".n.json.tmp-{host}-{dead}-0-{tail}",  # another output's
    ]
    target = tmp_path / "target"  # a stale symlink is unlinked, its target is not followed
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / f".m.json.tmp-{host}-{dead}-7-{tail}"
    link.symlink_to(target, target_is_directory=True)
    for name, kind in stale.items():
        p = tmp_path / name
        if kind == "dir":
            (p / "sub").mkdir(parents=True)
            (p / "sub" / "chunk").write_bytes(b"\0")
        else:
            p.write_text("partial")
        if kind == "old":
            os.utime(p, (time.time() - 7200, time.time() - 7200))
    for name in kept:
        (tmp_path / name).write_text("keep")

    with caplog.at_level(logging.INFO, logger="rocketstream.storage"):
        removed = remove_stale_siblings(final)
    assert sorted(p.name for p in removed) == sorted([*stale, link.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "m.json", "target"])
    assert (target / "keep").read_text() == "x" and final.read_text() == "{}"
    assert all(f"removed the stale temporary {tmp_path / name}" in caplog.text for name in stale)
    assert remove_stale_siblings(final) == [] and remove_stale_siblings(tmp_path / "no" / "m.json") == []
    with pytest.raises(ValueError, match="tag"):
        temp_sibling(final, "a-b")


# ----------------------------------------------------------------------------------- chunk size
@pytest.mark.parametrize("value", ["0", "-3"])
def test_cli_chunk_size_must_be_positive(tmp_path, capsys, value):
    src = tmp_path / "x.npy"
    np.save(src, make_data(10, 1, 20))
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(src), str(tmp_path / "o.zarr"), "--chunk-size", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]  # argparse also prints its usage
    assert len(errors) == 1 and "--chunk-size" in errors[0] and f"got {value}" in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_write_collection_chunk_size_must_be_positive(tmp_path, value):
    col = Collection(series=list(make_data(10, 1, 20)))
    with pytest.raises(IngestError, match=rf"chunk size .*got {value!r}.*--chunk-size"):
        write_collection(col, tmp_path / "o.zarr", chunk_size=value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- every chunk
def _missing_chunks(store: Path) -> list[str]:
    group = zarr.open_group(str(store), mode="r")
    missing = []
    for name, arr in group.arrays():
        for idx in np.ndindex(*arr.cdata_shape):
            key = f"{name}/{arr.metadata.encode_chunk_key(idx)}"
            if not (store / key).is_file():
                missing.append(key)
    return missing


@pytest.mark.parametrize("progress", [False, True])
def test_all_zero_chunks_are_written(tmp_path, progress):
    x = make_data(6, 2, 30, seed=2)
    x[2:4] = 0  # the second chunk of X is all zeros
    col = Collection(series=list(x), labels=np.zeros(6, np.int64))  # the label chunk too
    out = write_collection(col, tmp_path / "o.zarr", chunk_size=2, progress=progress)
    assert _missing_chunks(out) == []
    assert (out / "X" / "c" / "1" / "0" / "0").is_file()
    ds = xr.open_zarr(out)
    np.testing.assert_array_equal(ds.X.values, x)
    np.testing.assert_array_equal(ds.label.values, np.zeros(6))


def test_progress_path_writes_numeric_labels(tmp_path):
    col = Collection(series=list(make_data(10, 1, 20, seed=3)), labels=np.arange(10) % 3 + 1)
    stores = [write_collection(col, tmp_path / f"{p}.zarr", chunk_size=4, progress=p) for p in (False, True)]
    plain, progress = (xr.open_zarr(s).load() for s in stores)
    np.testing.assert_array_equal(progress.label.values, col.labels)
    xr.testing.assert_identical(plain, progress)
    assert _missing_chunks(stores[1]) == []


def test_ingest_never_replaces_its_input_or_what_it_did_not_write(tmp_path, capsys):
    from rocketstream.ingest import INGEST_ATTR
    from rocketstream.storage.outputs import INGEST_ATTR as MARK

    assert MARK == INGEST_ATTR  # how --overwrite recognises a store ingest wrote
    x = make_data(12, 2, 30)
    np.save(tmp_path / "x.npy", x)
    before = (tmp_path / "x.npy").read_bytes()
    code = main(["ingest", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is the input" in err[0], err
    assert (tmp_path / "x.npy").read_bytes() == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code = main(["ingest", str(tmp_path / "x.npy"), str(mine), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "not a rocketstream" in err[0] and "refusing" in err[0], err
    assert (mine / "notes.txt").read_text() == "keep"
    out = tmp_path / "d.zarr"
    assert main(["ingest", str(tmp_path / "x.npy"), str(out), "--no-progress"]) == 0
    assert main(["ingest", str(tmp_path / "x.npy"), str(out), "--overwrite", "--no-progress"]) == 0
    assert np.array_equal(zarr.open_group(str(out))["X"][:], x)
