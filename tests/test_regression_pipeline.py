"""Regression through the CLI as a user runs it, on the regression sets aeon ships (.ts files): ingest,
fit, transform, train (no --labels, no --task), predict, evaluate (no --labels). The head must be the
one aeon's MiniRocket + RidgeCV pipeline fits (same alpha, same predictions, same RMSE), and every step
must find what it needs in the stores the previous step wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from rocketstream.cli.main import main
from rocketstream.heads import load_head
from rocketstream.storage.zarrstore import recorded_task

AEON_DATA = Path(pytest.importorskip("aeon").__file__).parent / "datasets" / "data"
SEED = 3


def cli(capsys, *argv: object) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.mark.parametrize("name", ["Covid3Month", "CardanoSentiment"])
def test_regression_cli_equals_aeon_ridgecv(tmp_path, capsys, name):
    from aeon.datasets import load_from_ts_file
    from aeon.regression.convolution_based import MiniRocketRegressor
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_ts, test_ts = (AEON_DATA / name / f"{name}_{part}.ts" for part in ("TRAIN", "TEST"))
    tr, te = tmp_path / "train.zarr", tmp_path / "test.zarr"
    cli(capsys, "ingest", train_ts, tr)
    cli(capsys, "ingest", test_ts, te)
    assert recorded_task(zarr.open_group(tr, mode="r")["X"]) == "regression"
    cli(capsys, "fit", tr, "--model", tmp_path / "m.json", "--seed", SEED)
    cli(capsys, "transform", tr, "--model", tmp_path / "m.json", "--output", tmp_path / "f.zarr")
    said = cli(capsys, "train", tmp_path / "f.zarr", "--output", tmp_path / "h.npz")
    assert "task regression" in said and "ridge regression head" in said
    cli(capsys, "predict", te, "--model", tmp_path / "m.json", "--head", tmp_path / "h.npz",
        "--output", tmp_path / "p.zarr")
    metrics = json.loads(cli(capsys, "evaluate", tmp_path / "p.zarr", "--json"))
    ours = zarr.open_group(tmp_path / "p.zarr", mode="r")["value"][:]

    x_train, y_train = load_from_ts_file(str(train_ts))
    x_test, y_test = load_from_ts_file(str(test_ts))
    # aeon's MiniRocketRegressor pipeline, in float64 (aeon's own runs its scaler and RidgeCV on the
    # float32 features, so it differs from any float64 solver by float32 rounding; checked below too)
    mr = MiniRocket(random_state=SEED).fit(x_train)
    f_train, f_test = (mr.transform(x).astype(np.float64) for x in (x_train, x_test))
    ref = make_pipeline(StandardScaler(with_mean=False), RidgeCV(alphas=np.logspace(-3, 3, 10)))
    expected = ref.fit(f_train, y_train).predict(f_test)
    rmse = float(np.sqrt(np.mean((expected - y_test) ** 2)))

    head = load_head(tmp_path / "h.npz")
    assert head.task == "regression"
    assert head.info()["alpha"] == ref.steps[-1][1].alpha_
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12 * np.abs(y_test).max())
    assert metrics["task"] == "regression" and metrics["n"] == len(y_test)
    assert metrics["rmse"] == pytest.approx(rmse, rel=1e-9)
    aeon32 = MiniRocketRegressor(random_state=SEED).fit(x_train, y_train).predict(x_test)
    assert metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean((aeon32 - y_test) ** 2))), rel=1e-4)
