"""The MCAP snapshot format: durable finish, matching hashes, corrupt files rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import SnapshotError
from shared.messages import SensorMessage
from shared.snapshot import SnapshotReader, SnapshotWriter, read_sidecar, sha256_file
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource

TRIGGER = TriggerEvent(TriggerKind.HARD_BRAKE, 5_000_000, 0, 9_000_000, 80, TriggerSource.RULE)


def _write(path: Path, n: int = 300) -> None:
    w = SnapshotWriter(path, chunk_size=16 * 1024)
    for i in range(n):
        topic = "imu" if i % 3 else "lidar/top"
        w.add(SensorMessage(topic, topic + "0", i * 30_000, i * 30_000 + 7, i, "x", bytes([i % 251]) * 500),
              log_time_ns=i * 30_000)
    w.finish(snapshot_id="snap-1", vehicle_id="car-1", created_ns=1, start_ns=0, end_ns=9_000_000,
             triggers=(TRIGGER,), software_version="0.1.0", model_version="m1", calibration_version="c1")


def test_finish_renames_hashes_and_writes_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "a.mcap"
    _write(path)
    assert path.exists() and not (tmp_path / "a.mcap.active").exists()
    manifest = read_sidecar(path)
    assert manifest.sha256 == sha256_file(path)
    assert manifest.size_bytes == path.stat().st_size
    counts = {c.topic: c.count for c in manifest.channels}
    assert counts == {"imu": 200, "lidar/top": 100}


def test_reader_returns_the_messages_and_embedded_manifest(tmp_path: Path) -> None:
    path = tmp_path / "a.mcap"
    _write(path)
    with SnapshotReader(path) as r:
        got = list(r.messages())
        embedded = r.manifest
    assert len(got) == 300
    assert [m.seq for _, m in got] == list(range(300))
    assert got[5][1].t_recv_ns == 5 * 30_000 + 7 and got[5][1].payload == bytes([5]) * 500
    assert embedded.triggers == (TRIGGER,) and embedded.sha256 == ""  # the file cannot hold its own hash


def test_an_unfinished_writer_leaves_only_an_active_file(tmp_path: Path) -> None:
    path = tmp_path / "b.mcap"
    w = SnapshotWriter(path)
    w.add(SensorMessage("imu", "imu0", 1, 1, 0, "x", b"abc"), 1)
    assert not path.exists() and (tmp_path / "b.mcap.active").exists()
    w.abort()
    assert not (tmp_path / "b.mcap.active").exists()


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_snapshot_is_a_snapshot_error(tmp_path: Path, cut: float) -> None:
    path = tmp_path / "a.mcap"
    _write(path)
    bad = tmp_path / "cut.mcap"
    data = path.read_bytes()
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(SnapshotError):
        r = SnapshotReader(bad)
        list(r.messages())


def test_flipped_byte_in_a_chunk_fails_the_crc(tmp_path: Path) -> None:
    path = tmp_path / "a.mcap"
    _write(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError):
        r = SnapshotReader(path)
        list(r.messages())
