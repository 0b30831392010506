"""``ingest`` writes its store with Zarr alone, node for node what ``xarray.Dataset.to_zarr`` writes.

The reference is written here by xarray itself, the way ingest wrote stores before (labels of strings
as objects, X and length chunked along samples, consolidated metadata); every ``zarr.json`` must be
equal, and ``xarray.open_zarr`` must give identical Datasets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rocketstream.ingest import write_collection
from rocketstream.ingest.readers import Collection
from rocketstream.ingest.writer import INGEST_ATTR, padded_array, task_of
from rocketstream.storage.consolidated import quiet_consolidation

RNG = np.random.default_rng(0)
SERIES = [RNG.standard_normal((2, 20 - i % 3)).astype(np.float32) for i in range(7)]
LABELS = {
    "strings": np.array(["a", "bb", "a", "c", "bb", "a", "c"]),
    "integers": np.arange(7) % 3,
    "floats": RNG.standard_normal(7),
    "float32": np.arange(7, dtype=np.float32) / 2,
    "booleans": np.arange(7) % 2 == 0,
    "none": None,
}


def xarray_reference(col: Collection, path: Path, chunk: int, attrs: dict) -> None:
    x = padded_array(col)
    coords = {"sample": np.arange(len(x))}
    if col.labels is not None:
        labels = np.asarray(col.labels)
        coords["label"] = ("sample", labels.astype(object) if labels.dtype.kind in "US" else labels)
    ds = xr.Dataset({"X": (("sample", "channel", "time"), x), "length": ("sample", col.lengths)},
                    coords=coords, attrs=attrs)
    encoding = {"X": {"chunks": (chunk, *x.shape[1:])}, "length": {"chunks": (chunk,)}}
    with quiet_consolidation():
        ds.to_zarr(path, mode="w", encoding=encoding, consolidated=True, write_empty_chunks=True)


def metadata(root: Path) -> dict[str, dict]:
    return {str(f.relative_to(root)): json.loads(f.read_text()) for f in sorted(root.rglob("zarr.json"))}


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("progress", [False, True])
def test_store_is_what_xarray_writes(tmp_path, kind, progress):
    col = Collection(series=SERIES, labels=LABELS[kind], meta={"source_format": "npz"})
    out = write_collection(col, tmp_path / "ours.zarr", chunk_size=3, progress=progress)
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs[INGEST_ATTR]["complete"] is True
    if col.labels is not None:
        assert attrs["task"] == task_of(col.labels)
    xarray_reference(col, tmp_path / "ref.zarr", 3, attrs)
    ours, ref = metadata(out), metadata(tmp_path / "ref.zarr")
    assert list(ours) == list(ref) and len(ours) == (5 if col.labels is not None else 4)
    for name in ref:
        assert ours[name] == ref[name], name
    a, b = xr.open_zarr(out).load(), xr.open_zarr(tmp_path / "ref.zarr").load()
    xr.testing.assert_identical(a, b)
    assert a.X.dtype == np.float32 and a.sample.dtype == np.int64
    # every chunk is written, even one the fill value could stand for
    assert sorted(p.name for p in (out / "X" / "c").iterdir()) == ["0", "1", "2"]


@pytest.mark.filterwarnings("ignore:The data type")  # zarr: fixed-width bytes have no v3 specification yet
def test_other_label_kinds_still_go_through_xarray(tmp_path):
    col = Collection(series=SERIES, labels=np.array([b"x", b"y"] * 3 + [b"x"]), meta={})
    out = write_collection(col, tmp_path / "bytes.zarr", chunk_size=4)
    ds = xr.open_zarr(out)
    assert ds.sizes["sample"] == 7 and ds.label.size == 7
    assert list(ds.X.dims) == ["sample", "channel", "time"]
