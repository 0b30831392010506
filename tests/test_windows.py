"""Lazy windows over a long recording and their labels."""

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from dask.optimization import cull

from rocketstream.core import fit, transform
from rocketstream.ingest.windows import labels_from_annotations, labels_from_intervals, window_starts, windows


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(20_000)
    x = np.stack([np.sin(t / 17.0), np.cos(t / 40.0)]) + 0.3 * rng.standard_normal((2, t.size))
    path = tmp_path_factory.mktemp("rec") / "rec.zarr"
    z = zarr.create_array(str(path), shape=x.shape, chunks=(2, 3000), dtype="float32")
    z[:] = x.astype(np.float32)
    return zarr.open_array(str(path), mode="r")


def explicit(x: np.ndarray, length: int, stride: int) -> np.ndarray:
    starts = window_starts(x.shape[1], length, stride)
    return np.stack([x[:, s : s + length] for s in starts]).astype(np.float32)


def test_windows_equal_explicit_cut(recording):
    w = windows(da.from_zarr(recording), 250, 90, chunk_windows=37)
    ref = explicit(recording[:], 250, 90)
    assert w.shape == ref.shape and w.dtype == np.float32
    assert len(w.chunks[0]) > 5  # lazily chunked, one stretch of the recording per chunk
    np.testing.assert_array_equal(w.compute(), ref)


def test_each_chunk_reads_only_its_stretch(recording):
    w = windows(da.from_zarr(recording), 250, 90, chunk_windows=10)
    # the first chunk's graph depends only on the first recording chunk (time 0..3000)
    first = w.blocks[0]
    graph, _ = cull(dict(first.__dask_graph__()), list(dask.core.flatten(first.__dask_keys__())))
    deps = {k for k in graph if isinstance(k, tuple) and "from-zarr" in str(k[0])}
    assert deps and all(k[2] == 0 for k in deps)


def test_windowed_transform_equals_materialised_windows_bitwise(recording):
    w = windows(recording, 300, 150, chunk_windows=25)
    ref = explicit(recording[:], 300, 150)
    params = fit(ref, num_features=840, random_state=0)
    lazy = np.concatenate([transform(block.compute(), params).cpu().numpy() for block in w.blocks])
    np.testing.assert_array_equal(lazy, transform(ref, params).cpu().numpy())


def test_interval_labels():
    starts = window_starts(100, 10, 5)
    table = [(0, 40, "rest"), (40, 100, "walk")]
    lab = labels_from_intervals(starts, 10, table)
    assert lab[0] == "rest" and lab[-1] == "walk"
    # window 35..45 is half rest, half walk: tie goes to the label sorting first
    assert lab[starts.tolist().index(35)] == "rest"
    # min_coverage: a window covered by no interval is unlabelled
    lab2 = labels_from_intervals(window_starts(200, 10, 10), 10, table, unlabelled="none")
    assert lab2[-1] == "none" and lab2[0] == "rest"


def test_annotation_labels_match_majority():
    rng = np.random.default_rng(1)
    ann = np.repeat(rng.integers(0, 3, 60), rng.integers(5, 40, 60))
    starts = window_starts(len(ann), 25, 7)
    got = labels_from_annotations(starts, 25, ann, min_coverage=0.0, block=64)
    for s, g in zip(starts, got, strict=True):
        counts = np.bincount(ann[s : s + 25], minlength=3)
        assert g == int(np.argmax(counts))


def test_bad_windows():
    with pytest.raises(ValueError, match="shorter than one window"):
        window_starts(50, 100, 10)
    with pytest.raises(ValueError, match="stride"):
        window_starts(50, 10, 0)
