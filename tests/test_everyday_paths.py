"""The everyday CLI path as a new user walks it on real data: stores carry the input's per-sample
coordinates (so `train F --output H` and `evaluate P` need no other flag), the task is inferred, labels
come back as plain NumPy arrays, and series shorter than 9 points are handled at fit with messages
that name the command that fixes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers.data import make_data, write_zarr

from rocketstream.api.outofcore import fit, run_transform
from rocketstream.api.predict import evaluate, load_predictions
from rocketstream.cli.main import main
from rocketstream.core import save
from rocketstream.errors import InputError
from rocketstream.heads import load_head
from rocketstream.heads.targets import infer_task
from rocketstream.storage import FeatureStore

AEON_DATA = Path(pytest.importorskip("aeon").__file__).parent / "datasets" / "data"


def cli(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def ok(capsys, *argv: object) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    return out


def test_stores_carry_sample_coordinates_through_the_cli(tmp_path, capsys):
    gp = AEON_DATA / "GunPoint"
    tr, te = tmp_path / "train.zarr", tmp_path / "test.zarr"
    ok(capsys, "ingest", gp / "GunPoint_TRAIN.ts", tr)
    ok(capsys, "ingest", gp / "GunPoint_TEST.ts", te)
    ok(capsys, "fit", tr, "--model", tmp_path / "m.json", "--seed", 0)
    ok(capsys, "transform", tr, "--model", tmp_path / "m.json", "--output", tmp_path / "f.zarr")
    train_labels = zarr.open_group(tr, mode="r")["label"][:]
    feats = zarr.open_group(tmp_path / "f.zarr", mode="r")
    np.testing.assert_array_equal(feats["label"][:], train_labels)
    np.testing.assert_array_equal(feats["sample"][:], np.arange(50))

    said = ok(capsys, "train", tmp_path / "f.zarr", "--output", tmp_path / "h.npz")  # no --labels
    assert "task classification: recorded with the data" in said  # ingest recorded it
    head = load_head(tmp_path / "h.npz")
    assert head.classes_.dtype.kind == "U" and list(head.classes_) == ["1", "2"]

    ok(capsys, "predict", te, "--model", tmp_path / "m.json", "--head", tmp_path / "h.npz",
       "--output", tmp_path / "p.zarr")
    ds = load_predictions(tmp_path / "p.zarr")
    test_labels = np.asarray(zarr.open_group(te, mode="r")["label"][:].tolist())
    assert ds.label.dtype.kind == "U" and ds.input_label.dtype.kind == "U"
    np.testing.assert_array_equal(ds.input_label.values, test_labels)
    np.testing.assert_array_equal(ds.sample.values, np.arange(150))
    from sklearn.metrics import accuracy_score  # the labels work where users take them

    acc = accuracy_score(ds.input_label.values, ds.label.values)
    said = ok(capsys, "evaluate", tmp_path / "p.zarr")  # no --labels: the store's own
    assert f"accuracy = {acc:.4f}" in said
    assert evaluate(tmp_path / "p.zarr", te.as_posix() + ":label", verbose=False)["accuracy"] == acc
    assert acc == pytest.approx(0.98, abs=0.03)  # published MiniRocket accuracy on GunPoint


def test_evaluate_without_labels_needs_a_store_that_carries_them(tmp_path, capsys):
    x = make_data(40, 2, 30, seed=1)
    write_zarr(tmp_path / "x.zarr", x, 20)  # a bare array: no coordinates beside it
    params = fit(str(tmp_path / "x.zarr"), num_features=84, random_state=0)
    save(params, tmp_path / "m.json")
    run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "f.zarr", scheduler="synchronous")
    np.save(tmp_path / "y.npy", np.arange(40) % 2)
    ok(capsys, "train", tmp_path / "f.zarr", "--labels", tmp_path / "y.npy", "--output", tmp_path / "h.npz")
    ok(capsys, "predict", tmp_path / "x.zarr", "--model", tmp_path / "m.json", "--head", tmp_path / "h.npz",
       "--output", tmp_path / "p.zarr")
    code, _, err = cli(capsys, "evaluate", tmp_path / "p.zarr")
    assert code == 2 and "carries no 'label' coordinate" in err and "--labels" in err
    code, out, _ = cli(capsys, "evaluate", tmp_path / "p.zarr", "--labels", tmp_path / "y.npy")
    assert code == 0 and "accuracy" in out


@pytest.mark.parametrize(("labels", "recorded", "task"), [
    (np.array(["a", "b", "a"]), None, "classification"),
    (np.array([0, 1, 2, 1]), None, "classification"),
    (np.array([1.0, 2.0, 1.0]), None, "classification"),
    (np.array([0.5, 2.0, 1.0]), None, "regression"),
    (np.array([[1.0, 2.0], [3.0, 4.0]]), None, "regression"),
    (np.array([1.0, 2.0, 1.0]), "regression", "regression"),
    (np.array([0.5, 2.0]), "classification", "classification"),
])
def test_infer_task(labels, recorded, task):
    assert infer_task(labels, recorded)[0] == task


def test_train_task_flag_overrides_the_inference(tmp_path, capsys):
    x = make_data(30, 1, 40, seed=2)
    write_zarr(tmp_path / "x.zarr", x, 30)
    params = fit(str(tmp_path / "x.zarr"), num_features=84, random_state=0)
    run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "f.zarr", scheduler="synchronous")
    np.save(tmp_path / "y.npy", np.linspace(0, 1, 30))
    f, y = tmp_path / "f.zarr", tmp_path / "y.npy"
    said = ok(capsys, "train", f, "--labels", y, "--output", tmp_path / "r")
    assert "task regression: the targets are real numbers" in said
    assert load_head(tmp_path / "r.npz").task == "regression"
    said = ok(capsys, "train", f, "--labels", y, "--output", tmp_path / "c", "--task", "classification")
    assert "task " not in said.splitlines()[0] and load_head(tmp_path / "c.npz").task == "classification"


def _short_store(path: Path, short_at: int = 33) -> Path:
    """A padded unequal-length store with a ``length`` variable; one series has 5 points."""
    rng = np.random.default_rng(5)
    n, length = 60, 30
    x = rng.normal(size=(n, 1, length)).astype(np.float32)
    lengths = rng.integers(12, length + 1, size=n)
    lengths[short_at] = 5
    for i, k in enumerate(lengths):
        x[i, :, k:] = 0
    g = zarr.open_group(path, mode="w")
    g.create_array("X", data=x, chunks=(20, 1, length), dimension_names=("sample", "channel", "time"))
    g.create_array("length", data=lengths.astype(np.int64), chunks=(60,), dimension_names=("sample",))
    return path


def test_short_series_are_decided_at_fit(tmp_path, capsys):
    data = _short_store(tmp_path / "s.zarr")
    code, _, err = cli(capsys, "fit", data, "--model", tmp_path / "m.json", "--num-features", 84)
    assert code == 2 and "1 series are shorter than 9 time points (series 33 has 5)" in err
    assert "`rocketstream fit ... --pad-short`" in err and not (tmp_path / "m.json").exists()
    ok(capsys, "fit", data, "--model", tmp_path / "m.json", "--num-features", 84, "--pad-short")
    ok(capsys, "transform", data, "--model", tmp_path / "m.json", "--output", tmp_path / "f.zarr")
    assert FeatureStore.open(tmp_path / "f.zarr").done().all()


def test_transform_with_a_model_that_does_not_pad_refuses_before_writing(tmp_path, capsys):
    data = _short_store(tmp_path / "s.zarr")
    clean = _short_store(tmp_path / "clean.zarr")
    zarr.open_group(clean, mode="r+")["length"][33] = 20  # the same data without the short series
    params = fit(str(clean), variable="X", num_features=84, random_state=0)
    save(params, tmp_path / "m.json")
    for _ in range(2):  # the same answer again: nothing was left behind that asks for --resume
        code, _, err = cli(capsys, "transform", data, "--model", tmp_path / "m.json", "--output",
                           tmp_path / "f.zarr")
        assert code == 2 and "series 33 has 5" in err
        assert "refit it with `rocketstream fit ... --pad-short`" in err
        assert not (tmp_path / "f.zarr").exists()


def test_input_problem_found_mid_run(tmp_path):
    x = make_data(60, 2, 40, seed=3)
    write_zarr(tmp_path / "x.zarr", x, 20, group_var="X")
    params = fit(str(tmp_path / "x.zarr"), variable="X", num_features=84, random_state=0)
    ref, _ = run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "ref.zarr", variable="X",
                           scheduler="synchronous")
    arr = zarr.open_group(tmp_path / "x.zarr", mode="r+")["X"]
    # one chunk, with a NaN: the message says that nothing is finished and what completes the store
    arr[5, 0, 3] = np.nan
    with pytest.raises(InputError, match=r"NaN.*no chunk is finished in .*f\.zarr: fix the input first, then "
                       r"`rocketstream transform ... --resume`"):
        run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "f.zarr", variable="X",
                      scheduler="synchronous", chunk_size=60)
    arr[5, 0, 3] = x[5, 0, 3]
    store, _ = run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "f.zarr", variable="X",
                             scheduler="synchronous", resume=True)
    np.testing.assert_array_equal(store.features[:], ref.features[:])
    # three chunks, an Inf in the first (which Dask's order computes last): the two finished chunks are
    # kept, and once the input is fixed --resume completes the store
    arr[5, 1, 7] = np.inf
    with pytest.raises(InputError, match=r"2 of 3 chunks are finished.*--resume"):
        run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "g.zarr", variable="X",
                      scheduler="synchronous")
    assert FeatureStore.open(tmp_path / "g.zarr").done().tolist() == [False, True, True]
    arr[5, 1, 7] = x[5, 1, 7]
    store, planned = run_transform(str(tmp_path / "x.zarr"), params, tmp_path / "g.zarr", variable="X",
                                   scheduler="synchronous", resume=True)
    assert planned == [0] and store.done().all()
    np.testing.assert_array_equal(store.features[:], ref.features[:])


def test_stale_consolidated_metadata_is_never_read(tmp_path, capsys):
    """Stores carry consolidated metadata for xarray, but a raw Zarr append leaves it stale: rocketstream
    reads the arrays' own metadata, so it sees every row."""
    data = tmp_path / "train.zarr"
    ok(capsys, "ingest", AEON_DATA / "GunPoint" / "GunPoint_TRAIN.ts", data)
    group = zarr.open_group(data, mode="r+", use_consolidated=False)
    x, labels = group["X"], group["label"]
    extra = np.asarray(x[:7])
    x.append(extra, axis=0)
    labels.append(np.asarray(labels[:7]), axis=0)
    group["sample"].append(np.arange(50, 57), axis=0)
    group["length"].append(np.asarray(group["length"][:7]), axis=0)
    assert zarr.open_group(data, mode="r")["X"].shape[0] == 50  # what a consolidated reader sees
    ok(capsys, "fit", data, "--model", tmp_path / "m.json", "--seed", 0, "--num-features", 84)
    ok(capsys, "transform", data, "--model", tmp_path / "m.json", "--output", tmp_path / "f.zarr")
    feats = zarr.open_group(tmp_path / "f.zarr", mode="r", use_consolidated=False)
    assert feats["features"].shape == (57, 84) and feats["label"].shape == (57,)
    np.testing.assert_array_equal(feats["features"][50:], feats["features"][:7])
