import json

import numpy as np
import pytest

from rocketstream.core import ModelFileError, fit, load, save, transform


@pytest.fixture(scope="module")
def model(basicmotions):
    return fit(basicmotions[0], random_state=0)


def test_round_trip_is_exact(tmp_path, model, basicmotions):
    path = save(model, tmp_path / "m.json")
    back = load(path)
    assert back.equals(model)
    xte = basicmotions[2]
    np.testing.assert_array_equal(transform(xte, back).cpu().numpy(), transform(xte, model).cpu().numpy())
    assert b"pickle" not in path.read_bytes()


def test_tampered_file_is_rejected(tmp_path, model):
    path = save(model, tmp_path / "m.json")
    obj = json.loads(path.read_text())
    obj["seed"] = obj["seed"] + 1
    path.write_text(json.dumps(obj))
    with pytest.raises(ModelFileError, match="checksum"):
        load(path)


def test_truncated_and_foreign_files(tmp_path, model):
    path = save(model, tmp_path / "m.json")
    path.write_text(path.read_text()[:500])
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelFileError, match="not a rocketstream parameters file"):
        load(path)
    with pytest.raises(ModelFileError, match="not found"):
        load(tmp_path / "missing.json")


def test_future_version_is_rejected(tmp_path, model):
    path = save(model, tmp_path / "m.json")
    obj = json.loads(path.read_text())
    obj["format_version"] = 99
    path.write_text(json.dumps(obj))
    with pytest.raises(ModelFileError, match="version 99"):
        load(path)


def test_consistent_checksum_but_wrong_schema_is_rejected(tmp_path, model):
    from rocketstream.core.serialization import _checksum

    path = save(model, tmp_path / "m.json")
    obj = json.loads(path.read_text())
    obj["length"] = 57  # re-signed by hand, but dilations no longer follow
    obj.pop("sha256")
    obj["sha256"] = _checksum(obj)
    path.write_text(json.dumps(obj))
    with pytest.raises(ModelFileError, match="inconsistent model"):
        load(path)
