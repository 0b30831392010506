"""rocketstream.synthetic: deterministic generators, chunked writers equal to the in-memory data, the Zarr
layouts, bit-identity with the generators it replaced; and the light, lazy top-level namespace."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import zarr
from helpers.data import make_data
from helpers.data import write_zarr as helpers_write_zarr

import rocketstream
from rocketstream import synthetic as syn
from rocketstream.cli import demo


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def labels_sha(y: np.ndarray) -> str:
    return sha("\n".join(str(v) for v in y.tolist()).encode())


# Recorded from the generators before they moved here: tests/helpers/data.make_data,
# rocketstream.cli.demo.synthetic_chunk and benchmarks/_synthetic.write_zarr_input.
MAKE_SERIES = {
    (240, 2, 120, 0): "6418873b4d7805ffc6b84ab50d6fc977921eceeb2a5d1b80a6e154123f9ab908",
    (20, 2, 50, 3): "9dbc7bcce67e86f41c27730487539b360b5b1ecd479ecd269ac6519858e970ab",
    (7, 3, 33, 11): "a3f5d75f51e867921b5b04a38d2ddf7863ecee243644058d4aac736db4e5d5a9",
}
LABELLED = {  # (n, channels, length, seed, stream, index, n_classes) -> (sha of x, sha of the labels)
    (20, 3, 100, 1, 0, 2, 4): ("ebc936df85cebd5572262ea43937f0be7155997cf3484b1e8a8fb39e46d90117",
                               "a73e31a12800de27b7d119f180f43e0f2f2ef14c620973d4dfec77d56dde5f60"),
    (12, 2, 40, 5, 1, 0, 3): ("25664d78970a731b29f99e42cae982eba568abf9204c1b108dbc0fdc92860e33",
                              "5953763bac037074471c3da8c7915b3fbd45c90909e3b49f7a88c1d3436a189f"),
    (160, 2, 80, 4, 0, 0, 3): ("4dc3de4e5186d521e5c56cbf44c6520f28f8aed089331416d4076d76c9f7caa2",
                               "7e1f89e30589cc390519fbcffd7952e1643375fc20bf6c615651882643e2c214"),
}
SINE_STORE = {(50, 2, 30, 16): "4f8cc1accc6f99550d2ad70ae1b478dd22600ce6de94dd049c335be92a9c7bc3"}


# --- bit-identity with the old generators ---------------------------------------------------------

@pytest.mark.parametrize("args", list(MAKE_SERIES))
def test_make_series_matches_recorded_checksums(args):
    n, c, length, seed = args
    x = syn.make_series(n, c, length, seed=seed)
    assert sha(x.tobytes()) == MAKE_SERIES[args]
    assert np.array_equal(make_data(n, c, length, seed), x)  # the tests' alias


@pytest.mark.parametrize("args", list(LABELLED))
def test_labelled_chunk_matches_recorded_checksums(args):
    x, y = syn.labelled_chunk(*args)
    assert (sha(x.tobytes()), labels_sha(y)) == LABELLED[args]
    xd, yd = demo.synthetic_chunk(*args)  # the demo's names stay
    assert np.array_equal(xd, x) and np.array_equal(yd, y)


@pytest.mark.parametrize("args", list(SINE_STORE))
def test_sine_store_matches_recorded_checksum(tmp_path, args):
    n, c, length, chunk = args
    path = syn.write_sine_store(tmp_path / "in.zarr", n, c, length, chunk)
    z = zarr.open_array(path, mode="r")
    assert z.dtype == np.float32 and z.shape == (n, c, length) and z.chunks == (chunk, c, length)
    assert sha(np.ascontiguousarray(z[:]).tobytes()) == SINE_STORE[args]
    assert sha(syn.make_sines(n, c, length, chunk).tobytes()) == SINE_STORE[args]


# --- determinism, shapes, dtypes -------------------------------------------------------------------

def test_make_series_is_deterministic_per_seed():
    a, b = syn.make_series(5, 3, 40, seed=1), syn.make_series(5, 3, 40, seed=1)
    c = syn.make_series(5, 3, 40, seed=2)
    assert a.shape == (5, 3, 40) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert syn.make_series().shape == (240, 2, 120)


def test_labelled_chunk_is_deterministic_per_seed_stream_index():
    x, y = syn.labelled_chunk(10, 2, 64, seed=1, stream=0, index=0, n_classes=3)
    assert x.shape == (10, 2, 64) and x.dtype == np.float32 and y.shape == (10,)
    assert set(y.tolist()) <= set(syn.CLASS_NAMES[:3])
    x2, y2 = syn.labelled_chunk(10, 2, 64, seed=1, stream=0, index=0, n_classes=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    for other in ((2, 0, 0), (1, 1, 0), (1, 0, 1)):
        assert not np.array_equal(x, syn.labelled_chunk(10, 2, 64, *other, n_classes=3)[0])


@pytest.mark.parametrize("n_classes", [1, 5])
def test_labelled_chunk_rejects_bad_class_counts(n_classes):
    with pytest.raises(ValueError, match="n_classes"):
        syn.labelled_chunk(4, 1, 32, 0, 0, 0, n_classes=n_classes)


def test_sines_are_deterministic_and_seeded_per_chunk():
    a = syn.make_sines(10, 2, 16, chunk=4)
    assert a.shape == (10, 2, 16) and a.dtype == np.float32
    assert np.array_equal(a, syn.make_sines(10, 2, 16, chunk=4))
    assert np.array_equal(a[4:8], syn.sine_chunk(4, 4, 2, 16))
    assert np.array_equal(a[8:], syn.sine_chunk(8, 2, 2, 16))


def test_empty_datasets():
    assert syn.make_sines(0, 2, 16, 4).shape == (0, 2, 16)
    x, y = syn.make_labelled(0, 2, 16, chunk_size=4, seed=0)
    assert x.shape == (0, 2, 16) and y.shape == (0,)


# --- chunked writers equal the in-memory generators ------------------------------------------------

@pytest.mark.parametrize("n,chunk", [(50, 16), (48, 16), (5, 16)])
def test_labelled_store_equals_make_labelled(tmp_path, n, chunk):
    path = syn.write_labelled_store(tmp_path / "d.zarr", n, 2, 40, chunk_size=chunk, seed=2, stream=1,
                                    n_classes=3)
    x, y = syn.make_labelled(n, 2, 40, chunk_size=chunk, seed=2, stream=1, n_classes=3)
    g = zarr.open_group(str(path), mode="r")
    assert sorted(g.array_keys()) == ["X", "label"]
    assert g["X"].dtype == np.float32 and g["X"].chunks == (chunk, 2, 40)
    assert tuple(g["X"].metadata.dimension_names) == ("sample", "channel", "time")
    assert g["X"].attrs["coordinates"] == "label" and g["label"].chunks == (chunk,)
    assert np.array_equal(g["X"][:], x) and g["label"][:].tolist() == y.tolist()
    classes = ["sine", "square", "slow-sine"]
    assert g.attrs["rocketstream_demo"] == {"seed": 2, "stream": 1, "classes": classes}
    for i, start in enumerate(range(0, n, chunk)):  # chunk i is labelled_chunk(index=i)
        stop = min(n, start + chunk)
        assert np.array_equal(x[start:stop], syn.labelled_chunk(stop - start, 2, 40, 2, 1, i, 3)[0])


def test_labelled_store_refuses_an_existing_path(tmp_path):
    syn.write_labelled_store(tmp_path / "d.zarr", 4, 1, 32, chunk_size=2, seed=0)
    with pytest.raises(Exception):  # noqa: B017 - zarr's own "exists" error
        syn.write_labelled_store(tmp_path / "d.zarr", 4, 1, 32, chunk_size=2, seed=0)


def test_sine_store_equals_make_sines_and_replaces(tmp_path):
    path = tmp_path / "in.zarr"
    syn.write_sine_store(path, 7, 1, 20, 3)
    syn.write_sine_store(path, 10, 2, 16, 4)  # overwrites
    assert np.array_equal(zarr.open_array(str(path), mode="r")[:], syn.make_sines(10, 2, 16, 4))


# --- write_zarr layouts ----------------------------------------------------------------------------

def test_write_zarr_array_layout(tmp_path):
    x = syn.make_series(10, 2, 20, seed=1)
    path = syn.write_zarr(tmp_path / "a.zarr", x, 4)
    assert path == str(tmp_path / "a.zarr")
    a = zarr.open_array(path, mode="r")
    assert a.shape == x.shape and a.chunks == (4, 2, 20) and a.dtype == np.float32
    assert np.array_equal(a[:], x)
    assert helpers_write_zarr is syn.write_zarr


def test_write_zarr_group_layout_with_label(tmp_path):
    x = syn.make_series(10, 2, 20, seed=1)
    path = syn.write_zarr(tmp_path / "g.zarr", x, 4, time_chunk=5, group_var="X")
    g = zarr.open_group(path, mode="r")
    assert sorted(g.array_keys()) == ["X", "label"]
    assert g["X"].chunks == (4, 2, 5)
    assert tuple(g["X"].metadata.dimension_names) == ("sample", "channel", "time")
    assert np.array_equal(g["X"][:], x)
    assert g["label"].dtype == np.int64 and g["label"][:].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(Exception):  # noqa: B017 - mode "w-": never over an existing group
        syn.write_zarr(tmp_path / "g.zarr", x, 4, group_var="X")


# --- the package namespace stays light; the lazy names resolve --------------------------------------

def test_import_rocketstream_and_synthetic_stay_light():
    code = ("import sys, json, rocketstream, rocketstream.synthetic; "
            "print(json.dumps(sorted(m for m in ('torch', 'dask', 'zarr', 'xarray', 'distributed') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("name,module", [
    ("fit", "rocketstream.api.outofcore"),
    ("transform_to_zarr", "rocketstream.api.outofcore"),
    ("open_features", "rocketstream.api.outofcore"),
    ("predict", "rocketstream.api.predict"),
    ("evaluate", "rocketstream.api.predict"),
    ("load", "rocketstream.core.serialization"),
    ("save", "rocketstream.core.serialization"),
])
def test_lazy_top_level_verbs_resolve(name, module):
    import importlib

    obj = getattr(rocketstream, name)
    assert obj is getattr(importlib.import_module(module), name)
    assert callable(obj) and not isinstance(obj, type(rocketstream))  # the function, not a submodule
    assert name in rocketstream.__all__ and name in dir(rocketstream)


def test_every_lazy_name_resolves():
    import importlib

    for name, module in rocketstream._LAZY.items():
        assert getattr(rocketstream, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError):
        rocketstream.no_such_name  # noqa: B018
