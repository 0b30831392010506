"""The features store's encoding: feature-major zstd + crc32c, read back exactly by plain zarr, xarray and
dask with no rocketstream code on the read path, and smaller than the row-major encoding it replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import load_split
from zarr.codecs import Crc32cCodec, ZstdCodec

from rocketstream.api.outofcore import fit, transform_to_zarr
from rocketstream.core import transform

# Reads the store with zarr, xarray and dask only, then proves rocketstream was never imported.
_READER = textwrap.dedent("""
    import sys
    import dask.array as da
    import numpy as np
    import xarray as xr
    import zarr
    path, out = sys.argv[1], sys.argv[2]
    a = zarr.open_array(path + "/features")[:]
    b = xr.open_zarr(path, consolidated=False)["features"].values
    c = da.from_zarr(path, component="features").compute()
    assert not any(m.split(".")[0] == "rocketstream" for m in sys.modules), "rocketstream was imported"
    np.save(out, np.stack([a, b, c]))
""")


def _stored_bytes(array_dir: Path) -> int:
    return sum(f.stat().st_size for f in array_dir.rglob("*") if f.is_file() and f.name != "zarr.json")


@pytest.mark.parametrize("name", ["GunPoint", "BasicMotions"])
def test_plain_readers_get_the_exact_features(tmp_path, name):
    x, _ = load_split(name, "TRAIN")
    src = tmp_path / "x.zarr"
    zarr.create_array(str(src), shape=x.shape, chunks=(16, *x.shape[1:]), dtype="float32")[:] = x
    params = fit(str(src), num_features=10_000, random_state=0)
    out = tmp_path / "f.zarr"
    rows = transform_to_zarr(str(src), params, str(out)).chunks[0]
    ref = transform(x, params).cpu().numpy()

    meta = json.loads((out / "features" / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["transpose", "bytes", "zstd", "crc32c"]
    assert meta["codecs"][0]["configuration"]["order"] == [1, 0]

    done = subprocess.run([sys.executable, "-c", _READER, str(out), str(tmp_path / "read.npy")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for got in np.load(tmp_path / "read.npy"):
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))

    # the same chunks stored row-major (the earlier encoding) take more room
    rowmajor = zarr.create_array(str(tmp_path / "rowmajor"), shape=ref.shape, chunks=(rows, ref.shape[1]),
                                 dtype="float32", compressors=[ZstdCodec(level=3), Crc32cCodec()])
    rowmajor[:] = ref
    new, old = _stored_bytes(out / "features"), _stored_bytes(tmp_path / "rowmajor")
    assert new < 0.9 * old, (new, old)
    assert new <= 0.5 * ref.nbytes, new / ref.nbytes


def test_chunks_written_column_major_are_the_bytes_zarr_writes_itself(tmp_path):
    # write_chunk hands zarr the features already column-major (the transposing copy on the task's
    # thread); the stored chunks must be byte for byte what zarr writes from the row-major array
    from rocketstream.storage.chunkwriter import write_chunk
    from rocketstream.storage.features import FEATURE_COMPRESSORS, FEATURE_FILTERS

    x, _ = load_split("GunPoint", "train")
    params = fit(x, num_features=1000, random_state=0)
    store = transform_to_zarr(x, params, str(tmp_path / "f.zarr"), chunk_size=16)
    feats = transform(x, params).cpu().numpy()
    plain = zarr.create_array(str(tmp_path / "plain.zarr"), shape=feats.shape, chunks=(16, feats.shape[1]),
                              dtype="float32", filters=FEATURE_FILTERS, compressors=FEATURE_COMPRESSORS,
                              fill_value=np.nan)
    plain[:] = feats
    ours = tmp_path / "f.zarr" / "features" / "c"
    files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert len(files) == -(-len(x) // 16)
    for f in files:
        assert (ours / f).read_bytes() == (tmp_path / "plain.zarr" / "c" / f).read_bytes(), f
    # and the same again through write_chunk directly, for a chunk of other values
    block = np.ascontiguousarray(feats[:16][::-1])
    write_chunk(str(tmp_path / "f.zarr"), None, 0, 0, {"features": block})
    plain[:16] = block
    assert (ours / "0" / "0").read_bytes() == (tmp_path / "plain.zarr" / "c" / "0" / "0").read_bytes()
    assert np.array_equal(np.asarray(store[:16]), block)
