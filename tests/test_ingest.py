"""Ingest of real .ts/.tsv files shipped with aeon, NumPy and netCDF files, and bad files."""

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rocketstream.ingest import IngestError, ingest, read_any, read_ts, read_tsv


def _aeon_file(name: str) -> Path:
    import aeon

    return Path(os.path.dirname(aeon.__file__)) / "datasets" / "data" / name


def test_ts_unequal_matches_aeon_reader():
    from aeon.datasets import load_classification

    col = read_ts(_aeon_file("JapaneseVowels/JapaneseVowels_TRAIN.ts"))
    x, y = load_classification("JapaneseVowels", split="train")
    assert len(col.series) == len(x) == 270 and col.n_channels == 12 and not col.equal_length
    assert col.lengths.min() == 7 and col.lengths.max() == 26
    for ours, ref in zip(col.series, x, strict=True):
        np.testing.assert_array_equal(ours, np.asarray(ref, np.float32))
    np.testing.assert_array_equal(col.labels, y)


def test_ts_regression_targets_are_numeric():
    col = read_ts(_aeon_file("Covid3Month/Covid3Month_TRAIN.ts"))
    assert col.labels.dtype == np.float64 and col.equal_length


def test_tsv_matches_ts():
    a = read_tsv(_aeon_file("GunPoint/GunPoint_TRAIN.tsv"))
    b = read_ts(_aeon_file("GunPoint/GunPoint_TRAIN.ts"))
    np.testing.assert_allclose(np.stack(a.series), np.stack(b.series), rtol=1e-6)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_ingest_round_trip_unequal(tmp_path):
    out = ingest(_aeon_file("JapaneseVowels/JapaneseVowels_TEST.ts"), tmp_path / "jv.zarr", chunk_size=64)
    ds = xr.open_zarr(out)
    col = read_ts(_aeon_file("JapaneseVowels/JapaneseVowels_TEST.ts"))
    assert ds.X.dims == ("sample", "channel", "time") and ds.X.shape == (370, 12, 29)
    assert ds.X.chunks[0][0] == 64
    np.testing.assert_array_equal(ds.length.values, col.lengths)
    i = 5
    np.testing.assert_array_equal(ds.X.values[i, :, : col.lengths[i]], col.series[i])
    assert (ds.X.values[i, :, col.lengths[i] :] == 0).all()
    assert ds.label.values.tolist() == col.labels.tolist()
    assert ds.attrs["rocketstream_ingest"]["complete"] is True


def test_numpy_and_netcdf(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 2, 30)).astype(np.float32)
    y = np.arange(10) % 3
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "xy.npz", X=x, y=y)
    np.testing.assert_array_equal(np.stack(read_any(tmp_path / "x.npy").series), x)
    col = read_any(tmp_path / "xy.npz")
    np.testing.assert_array_equal(col.labels, y)
    xr.Dataset({"signal": (("sample", "channel", "time"), x)}, coords={"label": ("sample", y)}).to_netcdf(
        tmp_path / "x.nc", engine="scipy")
    col = read_any(tmp_path / "x.nc")
    np.testing.assert_array_equal(np.stack(col.series), x)
    np.testing.assert_array_equal(col.labels, y)
    out = ingest(tmp_path / "xy.npz", tmp_path / "xy.zarr")
    np.testing.assert_array_equal(xr.open_zarr(out).X.values, x)


GOOD_HEADER = ("@problemName T\n@timeStamps false\n@univariate false\n@dimensions 2\n"
               "@classLabel true a b\n@data\n")

BAD_FILES = {
    "truncated": (GOOD_HEADER + "1,2,3:4,5,6:a\n1,2,3:4,", "non-numeric|channels|label"),
    "no_data": ("@problemName T\n@classLabel true a b\n", "no @data"),
    "wrong_header": ("hello world\n1,2,3\n", "header tag"),
    "unknown_tag": ("@problemName T\n@colour blue\n@data\n1,2:a\n", "unknown header tag"),
    "mixed_channels": (GOOD_HEADER + "1,2,3:4,5,6:a\n1,2,3:b\n", "channels"),
    "non_numeric": (GOOD_HEADER + "1,2,x:4,5,6:a\n", "non-numeric value 'x'"),
    "bad_label": (GOOD_HEADER + "1,2,3:4,5,6:zzz\n", "not declared"),
    "empty_after_data": (GOOD_HEADER, "no series"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_ts_files_leave_nothing(tmp_path, case):
    text, pattern = BAD_FILES[case]
    src = tmp_path / "bad.ts"
    src.write_text(text)
    out = tmp_path / "out.zarr"
    with pytest.raises(IngestError, match=pattern):
        ingest(src, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.zarr")]


def test_existing_output_is_kept_without_overwrite(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 1, 20), np.float32))
    out = ingest(tmp_path / "x.npy", tmp_path / "o.zarr")
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 20), np.float32))
    with pytest.raises(FileExistsError, match="overwrite"):
        ingest(tmp_path / "x.npy", out)
    assert xr.open_zarr(out).X.values.min() == 1.0
    ingest(tmp_path / "x.npy", out, overwrite=True)
    assert xr.open_zarr(out).X.values.max() == 0.0


def test_missing_values_are_refused(tmp_path):
    src = tmp_path / "m.ts"
    src.write_text("@problemName T\n@missing true\n@classLabel true a\n@data\n1,?,3,4,5,6,7,8,9:a\n")
    with pytest.raises(IngestError, match="missing"):
        ingest(src, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()


def test_binary_file_is_refused(tmp_path):
    src = tmp_path / "b.ts"
    src.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(IngestError):
        read_ts(src)
