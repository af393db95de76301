"""LocalObjectStore: write-once raw/, append-only processed/, atomic writes, safe keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cloud_ingest.errors import ObjectExists, ObjectKeyError
from cloud_ingest.object_store import LocalObjectStore


def test_raw_is_write_once_and_moves_without_copy(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    src = tmp_path / "up.part"
    src.write_bytes(b"snapshot bytes")
    ino = src.stat().st_ino
    key = "raw/2023-11-14/car-1/seg/snapshot.mcap"
    store.put_file(key, src, move=True)
    assert not src.exists() and store.path(key).stat().st_ino == ino
    assert store.sha256(key) == hashlib.sha256(b"snapshot bytes").hexdigest()
    other = tmp_path / "other"
    other.write_bytes(b"different")
    with pytest.raises(ObjectExists):
        store.put_file(key, other)
    with pytest.raises(ObjectExists):
        store.put_bytes(key, b"different")
    assert store.read_bytes(key) == b"snapshot bytes"
    assert store.list("raw/2023-11-14") == [key]
    assert not [p for p in store.path(key).parent.iterdir() if p.name.endswith(".tmp")]


def test_processed_appends_and_synthetic_overwrites(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_bytes("processed/2023-11-14/seg/a.bin", b"1")
    store.put_bytes("processed/2023-11-14/seg/b.bin", b"2")
    with pytest.raises(ObjectExists):
        store.put_bytes("processed/2023-11-14/seg/a.bin", b"3")
    store.put_bytes("synthetic/exp/scn/x.bin", b"1")
    store.put_bytes("synthetic/exp/scn/x.bin", b"2")
    assert store.read_bytes("synthetic/exp/scn/x.bin") == b"2"
    assert store.list("processed/2023-11-14/seg") == ["processed/2023-11-14/seg/a.bin",
                                                      "processed/2023-11-14/seg/b.bin"]


@pytest.mark.parametrize("key", ["raw/../etc/passwd", "/raw/x", "raw//x", "other/x", "raw/a/.hidden/..",
                                 "raw/a b", "raw"])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ObjectKeyError):
        LocalObjectStore(tmp_path).put_bytes(key, b"x")
