"""Ingested unequal-length .ts data through the out-of-core fit/transform, and the ingest CLI."""

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rocketstream.api.outofcore import fit, open_features, transform_to_zarr
from rocketstream.cli import main
from rocketstream.core.variable import fit_variable, transform_variable
from rocketstream.ingest import read_ts


def _ts(name: str, split: str) -> Path:
    import aeon

    return Path(os.path.dirname(aeon.__file__)) / "datasets" / "data" / name / f"{name}_{split}.ts"


@pytest.fixture(scope="module")
def vowel_stores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vowels")
    for split in ("TRAIN", "TEST"):
        assert main(["ingest", str(_ts("JapaneseVowels", split)), str(tmp / f"{split}.zarr"),
                     "--chunk-size", "64", "--no-progress"]) == 0
    return tmp / "TRAIN.zarr", tmp / "TEST.zarr"


def test_out_of_core_unequal_lengths_equal_in_memory_rule(vowel_stores, tmp_path):
    train, test = vowel_stores
    params = fit(str(train), variable="X", random_state=0, pad_short=True)
    assert params.variable_length and params.length == 26  # reference length: the longest series
    ref = fit_variable(read_ts(_ts("JapaneseVowels", "TRAIN")).series, random_state=0, pad_short=True)
    np.testing.assert_array_equal(params.biases, ref.biases)
    transform_to_zarr(str(test), params, tmp_path / "f.zarr", variable="X", chunk_size=100)
    got = open_features(tmp_path / "f.zarr").values
    np.testing.assert_array_equal(got, transform_variable(read_ts(_ts("JapaneseVowels", "TEST")).series, ref))
    assert np.isfinite(got).all()


def test_ingested_japanese_vowels_accuracy(vowel_stores, tmp_path):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = vowel_stores
    params = fit(str(train), variable="X", random_state=1, pad_short=True)
    feats = {}
    for name, store in (("train", train), ("test", test)):
        transform_to_zarr(str(store), params, tmp_path / f"{name}.zarr", variable="X")
        feats[name] = open_features(tmp_path / f"{name}.zarr").values
    ytr = np.array(xr.open_zarr(train).label.values.tolist())  # variable-width strings to plain str
    yte = np.array(xr.open_zarr(test).label.values.tolist())
    clf = make_pipeline(StandardScaler(with_mean=False), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    assert clf.fit(feats["train"], ytr).score(feats["test"], yte) >= 0.97


def test_lengths_false_uses_the_padded_arrays(vowel_stores, tmp_path):
    train, _ = vowel_stores
    params = fit(str(train), variable="X", random_state=0, lengths=False)
    assert not params.variable_length and params.length == 26
    with pytest.raises(ValueError, match="fitted for equal lengths"):
        transform_to_zarr(str(train), params, tmp_path / "f.zarr", variable="X", lengths=np.full(270, 26))


def test_ingest_cli_bad_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.ts"
    bad.write_text("@problemName X\n@classLabel true a\n@data\n1,2,oops:a\n")
    assert main(["ingest", str(bad), str(tmp_path / "o.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-numeric value 'oops'" in err[0]
    assert not (tmp_path / "o.zarr").exists()


def test_predict_unequal_lengths_and_lock(vowel_stores, tmp_path):
    from rocketstream.api.predict import evaluate, predict
    from rocketstream.heads import RidgeHead
    from rocketstream.storage.lock import StoreLock, StoreLockedError

    train, test = vowel_stores
    params = fit(str(train), variable="X", random_state=2, pad_short=True)
    transform_to_zarr(str(train), params, tmp_path / "ftr.zarr", variable="X")
    labels = np.array(xr.open_zarr(train).label.values.tolist())
    head = RidgeHead().fit(open_features(tmp_path / "ftr.zarr"), labels)  # records the model
    out = tmp_path / "pred.zarr"
    with StoreLock(out), pytest.raises(StoreLockedError):
        predict(str(test), params, head, out, variable="X")  # a second writer is refused
    predict(str(test), params, head, out, variable="X")
    metrics = evaluate(out, np.array(xr.open_zarr(test).label.values.tolist()), verbose=False)
    assert metrics["accuracy"] >= 0.97


def test_cli_fit_unequal_lengths_with_pad_short(vowel_stores, tmp_path):
    from rocketstream.core import load

    train, _ = vowel_stores
    model = tmp_path / "m.json"
    assert main(["fit", str(train), "--variable", "X", "--model", str(model), "--seed", "0",
                 "--pad-short"]) == 0
    ref = fit_variable(read_ts(_ts("JapaneseVowels", "TRAIN")).series, random_state=0, pad_short=True)
    np.testing.assert_array_equal(load(model).biases, ref.biases)
