"""One contract every head kind meets (rocketstream.heads.Head), run over ridge and softmax heads for every
kind of target; plus the softmax estimator against train_softmax, and load_head."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
import torch

from rocketstream.core import ModelFileError
from rocketstream.heads import HEAD_KINDS, Head, RidgeHead, SoftmaxHead, load_head, train_softmax

N, F = 90, 10
FINGERPRINT = "ab" * 32  # a model fingerprint passed as ``model=`` (what a fitted model would give)
#: the arrays a predictions store holds per head kind and task: name -> dtype ("str" for text labels)
EXPECTED = {
    ("ridge", "classification"): {"label": None, "decision": "float64"},
    ("softmax", "classification"): {"label": None, "proba": "float32"},
    ("ridge", "regression"): {"value": "float64"},
    ("softmax", "regression"): {"value": "float64"},
}
INFO_KEYS = {"ridge": "alpha", "softmax": "best_epoch"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small torch ops run faster on one thread on the shared 2-core test machine; results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data(target: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(N, F)) * 2 + 1).astype(np.float32)
    y = {
        "3 classes": np.array(["a", "b", "c"])[(x[:, 0] > 0.5).astype(int) + (x[:, 1] > 1.5)],
        "2 classes": (x[:, 2] > 1).astype(np.int64) * 5 + 2,
        "1-D targets": x[:, :3] @ np.array([1.0, -0.5, 2.0]) + 10,
        "2-D targets": np.stack([x[:, 0] - x[:, 4], 3 * x[:, 5]], axis=1),
        "(n, 1) targets": (x[:, 6] - 2 * x[:, 7])[:, None],
    }[target]
    return x, y


def make(kind: str, task: str) -> Head:
    if kind == "ridge":
        return RidgeHead(task=task)
    return SoftmaxHead(epochs=3, batch_size=16, lr=1e-2, seed=1, task=task)


def assert_same_params(before: dict, after: dict) -> None:
    assert list(before) == list(after)
    for name, value in before.items():
        assert type(after[name]) is type(value), name
        same = np.array_equal(after[name], value) if isinstance(value, np.ndarray) else after[name] == value
        assert same, name


def assert_same_outputs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


@pytest.mark.parametrize("target", ["3 classes", "2 classes", "1-D targets", "2-D targets", "(n, 1) targets"])
@pytest.mark.parametrize("kind", ["ridge", "softmax"])
def test_head_contract(kind, target, tmp_path):
    task = "regression" if "targets" in target else "classification"
    x, y = data(target)
    head = make(kind, task)
    assert isinstance(head, Head) and head.kind == kind and HEAD_KINDS[kind] is type(head)
    for unfitted in (lambda: head.outputs(x), lambda: head.output_layout(N, 8), lambda: head.info(),
                     lambda: head.predict(x), lambda: head.save(tmp_path / "unfitted")):
        with pytest.raises(RuntimeError, match="not fitted"):
            unfitted()

    params = copy.deepcopy(head.get_params())
    assert head.fit(x, y, model=FINGERPRINT) is head
    assert_same_params(params, head.get_params())  # fit learns into attributes ending in "_" only
    assert head.task == task and head.n_features_in_ == F and head.model_fingerprint_ == FINGERPRINT
    if task == "classification":
        np.testing.assert_array_equal(head.classes_, np.unique(y))
    else:
        assert head.classes_ is None

    # outputs of one chunk of rows: exactly the arrays the layout announces
    rows = 23
    layout = head.output_layout(N, 8)
    out = head.outputs(x[:rows])
    assert list(out) == list(layout) == list(EXPECTED[kind, task])
    for name, (shape, chunks, dtype, dims) in layout.items():
        assert shape[0] == N and chunks[0] == 8 and chunks[1:] == shape[1:] and len(dims) == len(shape)
        assert out[name].shape == (rows, *shape[1:]), name
        if dtype is str:
            assert out[name].dtype.kind == "U", name
        else:
            assert out[name].dtype == np.dtype(dtype), name
        if EXPECTED[kind, task][name] is not None:
            assert out[name].dtype == np.dtype(EXPECTED[kind, task][name]), name
    assert layout[next(iter(layout))][3][0] == "sample"
    predicted = head.predict(x[:rows])
    np.testing.assert_array_equal(out["label" if task == "classification" else "value"], predicted)
    if target.endswith("D targets") or target == "(n, 1) targets":  # the values keep the targets' shape
        assert out["value"].shape == (rows, *y.shape[1:])
        assert layout["value"][3] == (("sample",) if y.ndim == 1 else ("sample", "target"))
    if "classes" in target:
        k = np.unique(y).size
        if kind == "softmax":
            assert out["proba"].shape == (rows, k)
            np.testing.assert_allclose(out["proba"].sum(axis=1), 1.0, rtol=1e-5)
        else:
            assert out["decision"].shape == ((rows,) if k == 2 else (rows, k))

    # info, and a save / load_head round trip that changes nothing
    info = head.info()
    assert set(info) == {"kind", "task", "n_features", INFO_KEYS[kind], "model_fingerprint"}
    assert (info["kind"], info["task"], info["n_features"], info["model_fingerprint"]) == (kind, task, F,
                                                                                          FINGERPRINT)
    path = head.save(tmp_path / "head")
    assert path.name == "head.npz"
    back = load_head(tmp_path / "head")
    assert type(back) is type(head) and back.kind == kind and back.task == task
    assert back.n_features_in_ == F and back.model_fingerprint_ == FINGERPRINT
    assert_same_outputs(back.outputs(x[:rows]), out)
    assert back.output_layout(N, 8) == layout
    stored = back.info(tmp_path / "head")
    assert stored == {**info, "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert list(stored)[:5] == ["kind", "task", "n_features", "path", "sha256"]
    assert type(head).load(path).info() == info
    with pytest.raises(FileExistsError, match="overwrite=True"):
        head.save(path)


def test_estimator_equals_train_softmax_bitwise(tmp_path):
    x, y = data("3 classes")
    kw = dict(epochs=6, batch_size=8, lr=5e-2, seed=4, validation_fraction=0.2, block_rows=16, lr_patience=1,
              stop_patience=3)
    fitted = SoftmaxHead(**kw, checkpoint_dir=tmp_path / "a").fit(x, y)
    function = train_softmax(x, y, checkpoint_dir=tmp_path / "b", **kw)
    for name in ("weight_", "bias_", "mean_", "scale_", "classes_"):
        a, b = getattr(fitted, name), getattr(function, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert fitted.history_ == function.history_ and fitted.best_epoch_ == function.best_epoch_
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "b" / "metrics.json").read_text())

    xv, yv = data("1-D targets")
    kw = dict(task="regression", epochs=4, batch_size=16, lr=1e-2, seed=2)
    fitted = SoftmaxHead(**kw).fit(xv[:70], yv[:70], validation=(xv[70:], yv[70:]))
    function = train_softmax(xv[:70], yv[:70], validation=(xv[70:], yv[70:]), **kw)
    assert fitted.weight_.tobytes() == function.weight_.tobytes() and fitted.history_ == function.history_
    assert fitted.y_mean_.tobytes() == function.y_mean_.tobytes() and fitted.target_1d_ is True
    with pytest.raises(TypeError, match="epoch"):
        train_softmax(x, y, epoch=3)  # a misspelt hyper-parameter is not silently ignored


def test_estimator_resume_equals_uninterrupted_run(tmp_path):
    x, y = data("2 classes")
    kw = dict(batch_size=8, lr=1e-2, seed=3, block_rows=16, validation_fraction=0.2)
    full = SoftmaxHead(epochs=6, checkpoint_dir=tmp_path / "full", **kw).fit(x, y)
    SoftmaxHead(epochs=2, checkpoint_dir=tmp_path / "cut", **kw).fit(x, y)
    with pytest.raises(FileExistsError, match="resume=True"):
        SoftmaxHead(epochs=6, checkpoint_dir=tmp_path / "cut", **kw).fit(x, y)
    head = SoftmaxHead(epochs=6, checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert head.fit(x, y) is head and head.resume is True and head.epochs == 6
    assert head.weight_.tobytes() == full.weight_.tobytes() and head.bias_.tobytes() == full.bias_.tobytes()
    assert head.history_ == full.history_ and len(full.history_["epoch"]) == 6
    assert_same_outputs(load_head(tmp_path / "cut").outputs(x), full.outputs(x))  # head.npz of the directory


def test_load_head_paths_and_refusals(tmp_path, monkeypatch):
    x, y = data("3 classes")
    RidgeHead().fit(x, y).save(tmp_path / "r.npz")
    SoftmaxHead(epochs=1, checkpoint_dir=tmp_path / "ckpt").fit(x, y)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert isinstance(load_head(f"file://{tmp_path}/r"), RidgeHead)  # file:// and no suffix
    assert isinstance(load_head("~/r.npz"), RidgeHead)
    assert isinstance(load_head(tmp_path / "ckpt"), SoftmaxHead)  # a checkpoint directory
    with pytest.raises(FileNotFoundError, match="head file not found"):
        load_head(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="directory without head.npz"):
        load_head(tmp_path / "empty")
    np.savez(tmp_path / "forest.npz", __meta__=np.asarray(json.dumps({"kind": "forest"})))
    with pytest.raises(ModelFileError, match="kind 'forest'.*expected a ridge or softmax head"):
        load_head(tmp_path / "forest.npz")
    np.savez(tmp_path / "list.npz", __meta__=np.asarray(json.dumps([1, 2])))
    with pytest.raises(ModelFileError, match="not a rocketstream head file"):
        load_head(tmp_path / "list.npz")
    np.save(tmp_path / "one.npy", np.arange(3))
    with pytest.raises(ModelFileError, match="not an .npz archive"):
        load_head(tmp_path / "one.npy")


def test_softmax_from_arrays_is_private_and_loadable(tmp_path):
    x, y = data("1-D targets")
    head = SoftmaxHead(task="regression", epochs=2).fit(x, y)
    copy_ = SoftmaxHead._from_arrays(head.weight_, head.bias_, head.mean_, head.scale_, y_mean=head.y_mean_,
                                     y_scale=head.y_scale_, target_1d=True, best_epoch=head.best_epoch_)
    assert copy_.task == "regression" and copy_.get_params() == {**head.get_params(), "epochs": 50}
    np.testing.assert_array_equal(copy_.predict(x), head.predict(x))
    with pytest.raises(TypeError):
        SoftmaxHead(head.weight_, head.bias_, head.mean_, head.scale_)  # the old array constructor is gone
