"""Files never load through pickle, and every file the package loads (model JSON, ridge/softmax head
.npz, training checkpoints) is sealed by a sha256: a tampered or damaged one is refused clearly."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rocketstream.api.predict import load_head
from rocketstream.core import ModelFileError, fit, load, save
from rocketstream.heads import CheckpointError, RidgeHead, SoftmaxHead, load_checkpoint, train_softmax

PACKAGE = Path(__file__).resolve().parent.parent / "rocketstream"


def _sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    return files


def test_no_pickle_anywhere_in_the_package():
    banned = re.compile(r"\bimport\s+(c?pickle|dill|joblib|cloudpickle|shelve|marshal)\b|"
                        r"\bfrom\s+(c?pickle|dill|joblib|cloudpickle|shelve|marshal)\b|"
                        r"allow_pickle\s*=\s*True|\bpickle\.loads?\(|\bunpickle")
    hits = [f"{p}:{i}: {line.strip()}" for p in _sources()
            for i, line in enumerate(p.read_text().splitlines(), 1) if banned.search(line)]
    assert not hits, hits


def _load_calls(module: str) -> list[tuple[Path, ast.Call]]:
    """Every ``<module>.load(...)`` call in the package."""
    out = []
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            func = getattr(node, "func", None)
            if (isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "load"
                    and isinstance(func.value, ast.Name) and func.value.id == module):
                out.append((p, node))
    return out


def test_every_torch_load_uses_weights_only_true():
    calls = []
    for p, node in _load_calls("torch"):
        kw = {k.arg: k.value for k in node.keywords}
        ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
        calls.append((f"{p.relative_to(PACKAGE)}:{node.lineno}", ok))
    assert calls, "expected the checkpoint loader to use torch.load"
    assert all(ok for _, ok in calls), [c for c, ok in calls if not ok]
    # np.load everywhere passes allow_pickle=False (or reads .npy via mmap without object arrays)
    for p, node in _load_calls("np"):
        kw = {k.arg: k.value for k in node.keywords}
        assert "allow_pickle" not in kw or kw["allow_pickle"].value is False, f"{p}:{node.lineno}"


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = (rng.normal(size=(90, 12)) + y[:, None]).astype(np.float32)
    RidgeHead().fit(x, y).save(root / "ridge.npz")
    train_softmax(x, y, checkpoint_dir=root / "soft", epochs=2, batch_size=16)
    return root, x


def _rewrite_npz(src: Path, dst: Path, edit) -> Path:
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["__meta__"]))
    edit(meta, arrays)
    arrays["__meta__"] = np.asarray(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def _scale_first(arrays: dict, name: str) -> None:
    a = arrays[name].copy()
    a.flat[0] = a.flat[0] * 2 + 1
    arrays[name] = a


EDITS = {
    "weight": lambda m, a, kind: _scale_first(a, "coef" if kind == "ridge" else "weight"),
    "mean": lambda m, a, kind: _scale_first(a, "mean"),
    "classes": lambda m, a, kind: a.__setitem__("classes", a["classes"][::-1].copy()),
    "metadata": lambda m, a, kind: m.__setitem__("alpha" if kind == "ridge" else "best_epoch", 123),
    "checksum-removed": lambda m, a, kind: m.pop("sha256"),
    "array-added": lambda m, a, kind: a.__setitem__("extra", np.zeros(3)),
}


@pytest.mark.parametrize("kind", ["ridge", "softmax"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_tampered_head_files_are_rejected(heads, tmp_path, kind, edit):
    root, x = heads
    src = root / "ridge.npz" if kind == "ridge" else root / "soft" / "head.npz"
    cls = RidgeHead if kind == "ridge" else SoftmaxHead
    good = cls.load(src)  # the untouched file loads and predicts
    assert good.predict(x).shape == (90,)
    bad = _rewrite_npz(src, tmp_path / "bad.npz", lambda m, a: EDITS[edit](m, a, kind))
    pattern = "no checksum" if edit == "checksum-removed" else "fails its sha256 check"
    with pytest.raises(ModelFileError, match=pattern):
        cls.load(bad)
    with pytest.raises(ModelFileError, match=pattern):
        load_head(bad)


class _Boom:
    """Would run code when unpickled."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_payloads_are_never_executed(heads, tmp_path, monkeypatch):
    root, _ = heads
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.npz"  # an object array (pickled) inside a head file
    with np.load(root / "ridge.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["coef"] = np.array([_Boom()], dtype=object)
    np.savez(evil, **arrays)
    with pytest.raises(ModelFileError, match="cannot read head file"):
        RidgeHead.load(evil)
    (tmp_path / "ckpt").mkdir()  # a checkpoint that is a plain pickle with a payload
    (tmp_path / "ckpt" / "checkpoint.pt").write_bytes(pickle.dumps({"format": "x", "boom": _Boom()}))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "ckpt")
    torch.save({"format": "rocketstream-softmax-checkpoint", "boom": _Boom()},
               tmp_path / "ckpt" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "ckpt")
    assert not (tmp_path / "pwned").exists()


def test_tampered_and_damaged_checkpoints_are_rejected(heads, tmp_path):
    root, _ = heads
    path = root / "soft" / "checkpoint.pt"
    state = load_checkpoint(root / "soft")
    assert state["epoch"] == 2 and len(state["sha256"]) == 64
    edits = {
        "weight": lambda s: s["model"]["weight"].__setitem__((0, 0), s["model"]["weight"][0, 0] + 1e-3),
        "optimizer": lambda s: s["optimizer"]["state"][0]["exp_avg"].mul_(2),
        "epoch": lambda s: s.__setitem__("epoch", 1),
        "config": lambda s: s["config"].__setitem__("lr", 1.0),
        "history": lambda s: s["history"]["train_loss"].__setitem__(0, 0.0),
        "checksum-removed": lambda s: s.pop("sha256"),
    }
    for name, edit in edits.items():
        s = torch.load(path, weights_only=True)
        edit(s)
        (tmp_path / name).mkdir()
        torch.save(s, tmp_path / name / "checkpoint.pt")
        with pytest.raises(CheckpointError, match="fails its sha256 check"):
            load_checkpoint(tmp_path / name)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "checkpoint.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "torn")


def test_tampered_model_file_is_rejected(tmp_path):
    params = fit(np.random.default_rng(0).normal(size=(20, 1, 40)).astype(np.float32), num_features=84,
                 random_state=0)
    save(params, tmp_path / "m.json")
    assert load(tmp_path / "m.json").equals(params)
    obj = json.loads((tmp_path / "m.json").read_text())
    obj["arrays"]["biases"]["data"] = obj["arrays"]["biases"]["data"][::-1]
    (tmp_path / "m.json").write_text(json.dumps(obj))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load(tmp_path / "m.json")
