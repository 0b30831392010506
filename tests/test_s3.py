"""Object storage: fit, transform (with resume, verification and the lock) and train against a real
S3-compatible server (moto, on loopback) through s3:// URLs. Credentials come from the environment
(or explicit ``storage_options``) and never reach the store's objects, attributes, logs or outputs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import zarr
from helpers.data import make_data
from s3server import SECRET, s3_server

from rocketstream.api.outofcore import features_info, fit, open_features, run_transform
from rocketstream.cli.main import main
from rocketstream.core import load, transform
from rocketstream.heads import RidgeHead, train_softmax
from rocketstream.storage import FeatureStore
from rocketstream.storage.lock import StoreLockedError

N, C, L = 90, 2, 60


@pytest.fixture(scope="module")
def s3():
    with s3_server("data") as endpoint:
        import boto3

        yield endpoint, boto3.client("s3", endpoint_url=endpoint)


def _objects(client, bucket: str = "data") -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _put_input(url: str, x: np.ndarray) -> None:
    g = zarr.open_group(url, mode="w")
    g.create_array("X", shape=x.shape, chunks=(30, C, L), dtype="float32",
                   dimension_names=("sample", "channel", "time"))[:] = x
    g.create_array("label", shape=(len(x),), dtype="int64", dimension_names=("sample",))[:] = (
        np.arange(len(x)) % 3)


def test_cli_and_api_against_s3(s3, tmp_path, caplog, capsys):
    endpoint, client = s3
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET  # credentials come from the environment
    x = make_data(N, C, L, seed=11)
    _put_input("s3://data/in.zarr", x)
    model, head = tmp_path / "m.json", tmp_path / "head.npz"
    with caplog.at_level(logging.DEBUG):  # everything, botocore included
        assert main(["fit", "s3://data/in.zarr", "--variable", "X", "--model", str(model), "--seed", "3",
                     "--num-features", "336"]) == 0
        assert main(["transform", "s3://data/in.zarr", "--variable", "X", "--model", str(model), "--output",
                     "s3://data/f.zarr", "--chunk-size", "20", "--no-progress"]) == 0
        assert main(["train", "s3://data/f.zarr", "--labels", "s3://data/in.zarr:label", "--output",
                     str(head)]) == 0
        assert main(["info", "s3://data/f.zarr", "--json"]) == 0
        # API: the same model from the same rows, features bitwise equal to the in-memory transform
        params = fit("s3://data/in.zarr", variable="X", num_features=336, random_state=3)
        assert params.equals(load(model))
        store = FeatureStore.open("s3://data/f.zarr")
        assert store.is_complete() and all(store.verify_chunk(i) for i in range(store.n_chunks))
        expected = transform(x, params).cpu().numpy()
        assert store.features[:].tobytes() == expected.tobytes()
        feats = open_features("s3://data/f.zarr")
        assert feats.shape == (N, 336) and np.array_equal(feats.values, expected)
        softmax = train_softmax(store.features, np.arange(N) % 3, checkpoint_dir=tmp_path / "ckpt", epochs=2,
                                batch_size=16)
        assert softmax.weight_.shape == (3, 336)
        assert RidgeHead.load(head).n_features_in_ == 336
        info = features_info("s3://data/f.zarr")
        assert info["complete"] and info["source"] == "s3://data/in.zarr"

        # resume on S3: a corrupted object under a set marker is found by its sha256 and rewritten
        client.put_object(Bucket="data", Key="f.zarr/features/c/1/0",
                          Body=_objects(client)["f.zarr/features/c/3/0"])
        _, computed = run_transform("s3://data/in.zarr", params, "s3://data/f.zarr", variable="X",
                                    resume=True, scheduler="threads")
        assert computed == [1]
        assert FeatureStore.open("s3://data/f.zarr").features[:].tobytes() == expected.tobytes()
    out, err = capsys.readouterr()

    # the secret is nowhere: not in any object of the bucket, the local outputs, logs or printed output
    objects = _objects(client)
    assert "f.zarr/zarr.json" in objects and not any(k.endswith(".lock") for k in objects)
    for key, body in objects.items():
        assert SECRET.encode() not in body, key
    attrs = json.loads(objects["f.zarr/zarr.json"])["attributes"]["rocketstream"]
    assert "storage_options" not in json.dumps(attrs) and "rocketstream-test-key" not in json.dumps(attrs)
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    assert SECRET not in caplog.text and SECRET not in out and SECRET not in err
    assert "fail their sha256 check" in caplog.text


def test_explicit_storage_options_are_not_persisted(s3, tmp_path, monkeypatch):
    endpoint, client = s3
    _put_input("s3://data/in2.zarr", make_data(40, C, L, seed=2))
    options = {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": SECRET,
               "client_kwargs": {"endpoint_url": endpoint}}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # only the explicit options can authenticate now
    params = fit("s3://data/in2.zarr", variable="X", num_features=84, random_state=0, storage_options=options)
    store, _ = run_transform("s3://data/in2.zarr", params, "s3://data/g.zarr", variable="X", chunk_size=10,
                             storage_options=options, scheduler="threads")
    assert store.is_complete()
    for key, body in _objects(client).items():
        assert SECRET.encode() not in body, key
    assert SECRET not in json.dumps(params.extra)


def test_lock_object_on_s3(s3, caplog):
    _, client = s3
    x = make_data(40, C, L, seed=5)
    params = fit(x, num_features=84, random_state=0)
    live = {"owner": "rocketstream", "host": socket.gethostname(), "pid": os.getpid(), "started": "now",
            "token": "someone-else"}
    client.put_object(Bucket="data", Key="h.zarr.lock", Body=json.dumps(live).encode())
    with pytest.raises(StoreLockedError, match=r"being written by another job .*delete the lock "
                                                r"s3://data/h\.zarr\.lock"):
        run_transform(x, params, "s3://data/h.zarr", scheduler="threads")
    assert not any(k.startswith("h.zarr/") for k in _objects(client))  # nothing written

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client.put_object(Bucket="data", Key="h.zarr.lock", Body=json.dumps({**live, "pid": dead.pid}).encode())
    with caplog.at_level(logging.WARNING, logger="rocketstream"):
        store, _ = run_transform(x, params, "s3://data/h.zarr", chunk_size=20, scheduler="threads")
    assert "broke the stale lock s3://data/h.zarr.lock" in caplog.text
    assert store.is_complete() and "h.zarr.lock" not in _objects(client)
