"""Incremental heads (issue 14): `train --update` folds rows appended to a features store into a head.

The grown stores are made as appends will make them: the first k rows of one labelled dataset, transformed
with one model into a features store, for growing k. Ridge: an update (plus alpha re-selection) equals a
full retrain on all rows; softmax: an update continues the checkpoint on the new rows.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from rocketstream.cli import main
from rocketstream.errors import CheckpointError, IdentityMismatchError, InputError, ModelFileError
from rocketstream.heads import RidgeHead, SoftmaxHead, load_checkpoint, load_head
from rocketstream.heads.ridge_stats import read_stats, stats_path
from rocketstream.heads.softmax import SoftmaxHead as SoftmaxClass
from rocketstream.heads.softmax_update import update_softmax
from rocketstream.storage.features import FeatureStore
from rocketstream.synthetic import make_labelled, write_labelled_store

SIZES = (120, 140, 160, 200)  # a first training, then three appends
GEN_CHUNK = 20  # rows per generated chunk: the first k rows of every store are the same rows


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """features stores f120 ... f200 (84 features, chunks of 16 rows) of the first k rows of one dataset,
    made with one model, each carrying its labels; f200b: the same rows made by another model; f200c:
    other rows made by the same model."""
    root = tmp_path_factory.mktemp("grown")
    for k in SIZES:
        write_labelled_store(root / f"d{k}.zarr", k, 1, 60, chunk_size=GEN_CHUNK, seed=5, n_classes=3)
    fit = ["fit", str(root / "d200.zarr"), "--variable", "X", "--num-features", "84"]
    assert main([*fit, "--model", str(root / "m.json"), "--seed", "0"]) == 0
    assert main([*fit, "--model", str(root / "m2.json"), "--seed", "1"]) == 0
    write_labelled_store(root / "other.zarr", 200, 1, 60, chunk_size=GEN_CHUNK, seed=6, n_classes=3)
    jobs = [(f"d{k}", "m", f"f{k}") for k in SIZES] + [("d200", "m2", "f200b"), ("other", "m", "f200c")]
    for data, model, out in jobs:
        assert main(["transform", str(root / f"{data}.zarr"), "--variable", "X", "--model",
                     str(root / f"{model}.json"), "--output", str(root / f"{out}.zarr"), "--chunk-size", "16",
                     "--scheduler", "synchronous"]) == 0
    return root


def features(root, k):
    return FeatureStore.open(root / f"f{k}.zarr").verified()


def labels(k):
    return make_labelled(200, 1, 60, chunk_size=GEN_CHUNK, seed=5, n_classes=3)[1][:k]


def assert_same_decisions(a: RidgeHead, b: RidgeHead, x) -> None:
    """Same alpha and decisions within 1e-9 relative (to the largest decision)."""
    assert a.alpha_ == b.alpha_
    da, db = a.decision_function(x), b.decision_function(x)
    assert np.abs(da - db).max() <= 1e-9 * np.abs(db).max()
    if b.classes_ is not None:
        np.testing.assert_array_equal(a.predict(x), b.predict(x))


class Recording:
    """A (n, F) array that records the row ranges read from it."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.shape, self.dtype, self.reads = x, x.shape, x.dtype, []

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) else key
        start, stop, _ = rows.indices(self.shape[0])
        self.reads.append((start, stop))
        return self.x[key]


def synthetic(n=900, f=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, f)) @ rng.standard_normal((f, f)) * 0.1 + 0.5).astype(np.float32)
    score = x.astype(np.float64) @ rng.standard_normal(f)
    y = np.digitize(score, np.quantile(score, [0.3, 0.6])).astype(str)
    y[:300][y[:300] == "2"] = "1"  # class "2" first appears in the appended rows
    return x, y, score + rng.standard_normal(n)


# ---------------------------------------------------------------------------------------------- ridge
def test_train_update_after_three_appends_predicts_like_a_full_retrain(stores, tmp_path, capsys):
    head = tmp_path / "head.npz"
    assert main(["train", str(stores / "f120.zarr"), "--output", str(head)]) == 0
    assert stats_path(head).is_file()
    for before, k in zip(SIZES, SIZES[1:], strict=False):
        assert main(["train", str(stores / f"f{k}.zarr"), "--output", str(head), "--update"]) == 0
        out = capsys.readouterr().out
        assert f"updated a ridge classification head with {k - before} new rows, now {k} x 84" in out
    assert main(["train", str(stores / "f200.zarr"), "--output", str(tmp_path / "full.npz")]) == 0
    updated, full = RidgeHead.load(head, stats=True), RidgeHead.load(tmp_path / "full.npz", stats=True)
    assert updated.mode_ == full.mode_ == "cov" and updated.n_samples_ == 200
    assert_same_decisions(updated, full, features(stores, 200))
    np.testing.assert_allclose(updated.cv_scores_, full.cv_scores_, rtol=1e-9)
    assert updated.stats_.count == 200 and updated.stats_.identity == full.stats_.identity
    np.testing.assert_allclose(updated.stats_.comoment, full.stats_.comoment, rtol=1e-9, atol=1e-12)
    # nothing new: nothing is written
    before = head.read_bytes(), stats_path(head).read_bytes()
    assert main(["train", str(stores / "f200.zarr"), "--output", str(head), "--update"]) == 0
    assert "nothing to update" in capsys.readouterr().out
    assert (head.read_bytes(), stats_path(head).read_bytes()) == before


def test_no_stats_keeps_no_statistics_and_update_then_says_why(stores, tmp_path, capsys):
    head, kept = tmp_path / "head.npz", tmp_path / "kept.npz"
    assert main(["train", str(stores / "f120.zarr"), "--output", str(kept)]) == 0
    assert main(["train", str(stores / "f120.zarr"), "--output", str(head)]) == 0
    assert stats_path(head).is_file()
    # retrained without statistics: the old file (of the replaced head) goes too
    assert main(["train", str(stores / "f120.zarr"), "--output", str(head), "--overwrite", "--no-stats"]) == 0
    assert head.is_file() and not stats_path(head).exists()
    x = features(stores, 120)
    assert_same_decisions(RidgeHead.load(head), RidgeHead.load(kept), x)
    capsys.readouterr()
    assert main(["train", str(stores / "f140.zarr"), "--output", str(head), "--update"]) == 2
    err = capsys.readouterr().err
    assert "no ridge statistics" in err and "--no-stats" in err and "without --update" in err
    assert not stats_path(head).exists()
    # an update can drop them too
    assert main(["train", str(stores / "f140.zarr"), "--output", str(kept), "--update", "--no-stats"]) == 0
    assert not stats_path(kept).exists() and RidgeHead.load(kept).n_samples_ == 140
    # a softmax head has no statistics: the option is refused before anything is read or written
    soft = tmp_path / "soft.npz"
    assert main(["train", str(stores / "f120.zarr"), "--output", str(soft), "--head", "softmax",
                 "--no-stats"]) == 2
    err = capsys.readouterr().err
    assert "--no-stats applies to ridge heads" in err and "drop the option" in err
    assert list(tmp_path.glob("soft*")) == []


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_update_api_equals_a_fit_on_all_rows(task):
    x, y, target = synthetic()
    y = y if task == "classification" else target
    head = RidgeHead(task=task).fit(x[:300], y[:300])
    for before, k in ((300, 450), (450, 600), (600, 900)):
        assert head.update(x[:k], y[:k]).rows_added_ == k - before
    full = RidgeHead(task=task).fit(x, y)
    assert_same_decisions(head, full, x)
    if task == "classification":
        np.testing.assert_array_equal(head.classes_, ["0", "1", "2"])  # a class first seen in new rows


def test_keeping_alpha_reads_only_the_new_rows():
    x, y, _ = synthetic()
    head = RidgeHead().fit(x[:600], y[:600])
    grown = Recording(x)
    head.update(grown, y, reselect_alpha=False)
    edges = {(0, 4), (596, 600)}  # the identity check reads the ends of the old rows
    assert {r for r in grown.reads if r[0] < 600} <= edges
    assert (600, 900) in grown.reads
    assert np.isnan(head.cv_scores_).all()
    assert_same_decisions(head, RidgeHead(alphas=[head.alpha_]).fit(x, y), x)


def test_a_gram_form_head_is_refitted_on_all_rows():
    x, y, _ = synthetic(n=60, f=40)
    head = RidgeHead().fit(x[:30], y[:30])
    assert head.mode_ == "gram" and not head.stats_.has_moments
    head.update(x, y)
    assert head.rows_added_ == 30
    assert_same_decisions(head, RidgeHead().fit(x, y), x)


def test_statistics_file_round_trip_and_checks(tmp_path):
    x, y, _ = synthetic()
    head = RidgeHead().fit(x[:500], y[:500])
    path = head.save(tmp_path / "h.npz")
    loaded = RidgeHead.load(path, stats=True)
    np.testing.assert_array_equal(loaded.stats_.comoment, head.stats_.comoment)
    np.testing.assert_array_equal(loaded.stats_.xy, head.stats_.xy)
    assert loaded.stats_.identity == head.stats_.identity
    assert not hasattr(RidgeHead.load(path), "stats_") and not hasattr(load_head(path), "stats_")
    assert_same_decisions(loaded.update(x, y), RidgeHead().fit(x, y), x)
    with pytest.raises(FileExistsError, match="already exists"):
        head.save(tmp_path / "h.npz")
    other = RidgeHead().fit(x[:400], y[:400]).save(tmp_path / "other.npz")
    shutil.copy(stats_path(other), stats_path(path))  # statistics of another head
    with pytest.raises(ModelFileError, match="belong to another head"):
        read_stats(stats_path(path), path)
    raw = bytearray(stats_path(other).read_bytes())
    raw[-200] ^= 1
    stats_path(other).write_bytes(bytes(raw))
    with pytest.raises(ModelFileError):
        RidgeHead.load(other, stats=True)
    with pytest.raises(InputError, match="no statistics"):
        RidgeHead.load(other).update(x, y)


def test_update_refuses_other_rows_labels_or_model(stores, tmp_path, capsys):
    head = tmp_path / "head.npz"
    assert main(["train", str(stores / "f140.zarr"), "--output", str(head)]) == 0
    fitted = RidgeHead.load(head, stats=True)
    y = labels(200)
    with pytest.raises(IdentityMismatchError, match="labels of rows 0-139"):
        fitted.update(features(stores, 200), np.roll(y, 1))
    with pytest.raises(InputError, match="has learned from 140"):
        fitted.update(features(stores, 120), y[:120])
    with pytest.raises(IdentityMismatchError, match="chunk digests differ"):  # other rows, same labels
        fitted.update(FeatureStore.open(stores / "f200c.zarr").verified(), y)
    before = head.read_bytes()
    for argv, match in [
        (["train", str(stores / "f200b.zarr"), "--output", str(head), "--update"], "model"),
        (["train", str(stores / "f200.zarr"), "--output", str(head), "--update", "--head", "softmax"],
         "holds a ridge classification head"),
        (["train", str(stores / "f200.zarr"), "--output", str(head), "--update", "--overwrite"], "excludes"),
        (["train", str(stores / "f200.zarr"), "--output", str(tmp_path / "none.npz"), "--update"],
         "no head file"),
        (["train", str(stores / "f200.zarr"), "--output", str(head), "--keep-alpha"], "--keep-alpha"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err, err
    assert head.read_bytes() == before


# -------------------------------------------------------------------------------------------- softmax
SOFTMAX = ["--head", "softmax", "--epochs", "3", "--batch-size", "16", "--lr", "0.01", "--seed", "1",
           "--validation-fraction", "0.2", "--device", "cpu", "--no-progress"]


def test_softmax_update_resumes_from_its_checkpoint(stores, tmp_path, capsys, monkeypatch):
    head = tmp_path / "soft.npz"
    ckpt = tmp_path / "soft_checkpoint"
    assert main(["train", str(stores / "f120.zarr"), "--output", str(head), *SOFTMAX]) == 0
    first, saved = load_head(head), load_checkpoint(ckpt)
    seen = {}
    original = SoftmaxClass._epoch_loop

    def spy(self, trainer, progress, config, mean, scale):  # the state the update's epochs start from
        seen["weight"] = trainer.model.linear.weight.detach().cpu().numpy().copy()
        seen["adam"] = trainer.optimizer.state_dict()["state"][0]["exp_avg"].clone()
        seen["lr"] = trainer.optimizer.param_groups[0]["lr"]
        seen["rows"] = trainer.loader.source.n_samples
        return original(self, trainer, progress, config, mean, scale)

    monkeypatch.setattr(SoftmaxClass, "_epoch_loop", spy)
    assert main(["train", str(stores / "f160.zarr"), "--output", str(head), "--update", *SOFTMAX]) == 0
    assert "updated a softmax classification head with 40 new rows, now 160 x 84" in capsys.readouterr().out
    np.testing.assert_array_equal(seen["weight"], first.weight_)  # the head's weights, not a fresh start
    assert torch.equal(seen["adam"], saved["optimizer"]["state"][0]["exp_avg"])  # Adam's state carried on
    assert seen["lr"] == saved["optimizer"]["param_groups"][0]["lr"] and seen["rows"] == 40
    updated = load_head(head)
    assert len(updated.history_["epoch"]) == 3 and not np.array_equal(updated.weight_, first.weight_)
    np.testing.assert_array_equal(updated.mean_, first.mean_)  # the first training's standardisation
    config = load_checkpoint(ckpt)["config"]
    assert (config["update"]["from_row"], config["update"]["to_row"], config["n_samples"]) == (120, 160, 40)
    # the next update starts where this one ended
    assert main(["train", str(stores / "f200.zarr"), "--output", str(head), "--update", *SOFTMAX]) == 0
    assert "with 40 new rows, now 200 x 84" in capsys.readouterr().out and seen["rows"] == 40


def test_an_interrupted_softmax_update_is_finished_by_running_it_again(stores, tmp_path, monkeypatch):
    y = labels(200)
    common = {"epochs": 3, "batch_size": 16, "lr": 0.01, "seed": 1, "validation_fraction": 0.2,
              "device": "cpu"}
    SoftmaxHead(checkpoint_dir=tmp_path / "a", **common).fit(features(stores, 120), y[:120])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    kw = {"epochs": 4, "validation_fraction": 0.2, "device": "cpu"}
    whole = update_softmax(tmp_path / "a", features(stores, 200), y, **kw)
    original = SoftmaxClass._end_epoch

    def crash_after_two(self, trainer, progress, epoch, train_loss):
        original(self, trainer, progress, epoch, train_loss)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(SoftmaxClass, "_end_epoch", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        update_softmax(tmp_path / "b", features(stores, 200), y, **kw)
    monkeypatch.setattr(SoftmaxClass, "_end_epoch", original)
    with pytest.raises(CheckpointError, match="did not finish"):
        update_softmax(tmp_path / "b", features(stores, 200), y, **{**kw, "validation_fraction": 0.3})
    resumed = update_softmax(tmp_path / "b", features(stores, 200), y, **kw)
    assert resumed.rows_added_ == whole.rows_added_ == 80
    np.testing.assert_array_equal(resumed.weight_, whole.weight_)
    assert resumed.history_ == whole.history_


def test_softmax_update_refuses_new_classes_and_other_rows(stores, tmp_path):
    y = labels(200)
    SoftmaxHead(checkpoint_dir=tmp_path / "c", epochs=2, batch_size=16, device="cpu").fit(
        features(stores, 120), y[:120])
    y2 = y.astype("<U16")
    y2[150] = "another class"  # a class the head has no output for
    with pytest.raises(InputError, match="no output"):
        update_softmax(tmp_path / "c", features(stores, 200), y2, epochs=1, device="cpu")
    with pytest.raises(IdentityMismatchError):
        update_softmax(tmp_path / "c", features(stores, 200), np.roll(y, 1), epochs=1, device="cpu")
    with pytest.raises(IdentityMismatchError, match="model"):
        update_softmax(tmp_path / "c", FeatureStore.open(stores / "f200b.zarr").verified(), y, epochs=1,
                       device="cpu")
