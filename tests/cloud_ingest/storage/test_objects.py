"""One suite for every ObjectStore: the local directory and S3 (boto3 against moto's real HTTP S3
endpoint on loopback): write-once raw/, append-only processed/, overwritable synthetic/, safe keys."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_ingest.config import CloudConfig, StoreConfig
from cloud_ingest.errors import ObjectExists, ObjectKeyError
from cloud_ingest.storage.objects.local import LocalObjectStore
from cloud_ingest.storage.objects.protocol import ObjectStore
from cloud_ingest.storage.objects.registry import open_store
from tests.helpers import require_module


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server: Any = require_module("moto.server", "moto[server] not installed: no S3 endpoint here")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"avdata-{uuid.uuid4().hex[:12]}"
    cfg = CloudConfig(data_dir=tmp_path, store=StoreConfig(backend="s3", bucket=bucket, endpoint_url=endpoint,
                                                           prefix="fleet-a"))
    s3 = open_store(cfg)
    s3.client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    return s3


def test_raw_is_write_once(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "up.part"
    src.write_bytes(b"snapshot bytes")
    key = "raw/2023-11-14/car-1/seg/snapshot.mcap"
    store.put_file(key, src, move=True)
    assert not src.exists() and store.exists(key) and not store.exists(key + ".x")
    assert store.sha256(key) == hashlib.sha256(b"snapshot bytes").hexdigest()
    other = tmp_path / "other"
    other.write_bytes(b"different")
    with pytest.raises(ObjectExists):
        store.put_file(key, other)
    with pytest.raises(ObjectExists):
        store.put_bytes(key, b"different")
    assert store.read_bytes(key) == b"snapshot bytes"
    assert store.list("raw/2023-11-14") == [key]


def test_local_raw_moves_without_copy(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    src = tmp_path / "up.part"
    src.write_bytes(b"snapshot bytes")
    ino = src.stat().st_ino
    key = "raw/2023-11-14/car-1/seg/snapshot.mcap"
    store.put_file(key, src, move=True)
    assert store.path(key).stat().st_ino == ino
    assert not [p for p in store.path(key).parent.iterdir() if p.name.endswith(".tmp")]


def test_processed_appends_and_synthetic_overwrites(store: ObjectStore) -> None:
    store.put_bytes("processed/2023-11-14/seg/a.bin", b"1")
    store.put_bytes("processed/2023-11-14/seg/b.bin", b"2")
    with pytest.raises(ObjectExists):
        store.put_bytes("processed/2023-11-14/seg/a.bin", b"3")
    store.put_bytes("synthetic/exp/scn/x.bin", b"1")
    store.put_bytes("synthetic/exp/scn/x.bin", b"2")
    assert store.read_bytes("synthetic/exp/scn/x.bin") == b"2"
    assert store.list("processed/2023-11-14/seg") == ["processed/2023-11-14/seg/a.bin",
                                                      "processed/2023-11-14/seg/b.bin"]
    assert store.list("processed/2023-11-14/se") == []  # prefixes end at a "/" boundary
    assert store.list("processed/2023-11-15") == []


@pytest.mark.parametrize("key", ["raw/../etc/passwd", "/raw/x", "raw//x", "other/x", "raw/a/.hidden/..",
                                 "raw/a b", "raw"])
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ObjectKeyError):
        store.put_bytes(key, b"x")
