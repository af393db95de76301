"""Startup recovery: nothing corrupt is ever queued, complete work is never thrown away."""

from __future__ import annotations

import os
from pathlib import Path

from mcap.reader import make_reader

from shared import messages
from shared.messages import SensorMessage
from shared.snapshot import MANIFEST_SUFFIX, SnapshotReader, read_sidecar, sha256_file
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from tests.vehicle.upload.test_uploader import make_snapshot
from vehicle.snapshot.writer import SnapshotMeta, recover, snapshot_filename, write_snapshot
from vehicle.triggers.windows import PendingWindow

NS = 1_000_000_000


def test_filename_is_sortable_and_colon_free() -> None:
    name = snapshot_filename("car-7", 1_700_000_000_123_456_789, "0f1e2d3c-aaaa-bbbb-cccc-000000000000")
    assert name == "car-7_20231114T221320.123Z_0f1e2d3c.mcap"


def test_truncated_active_file_is_discarded(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 50_000)
    data = snap.path.read_bytes()
    snap.path.unlink()
    snap.path.with_name(snap.path.name + MANIFEST_SUFFIX).unlink()
    active = snap.path.with_name(snap.path.name + ".active")
    active.write_bytes(data[: len(data) // 2])
    report = recover(tmp_path)
    assert report.complete == [] and report.discarded == [active.name]
    assert list(tmp_path.iterdir()) == []


def test_complete_active_file_is_recovered(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 50_000)
    snap.path.with_name(snap.path.name + MANIFEST_SUFFIX).unlink()
    os.replace(snap.path, snap.path.with_name(snap.path.name + ".active"))  # crash before the rename
    report = recover(tmp_path)
    assert report.recovered == [snap.path.name]
    (done,) = report.complete
    assert done.manifest.sha256 == sha256_file(snap.path) == snap.manifest.sha256
    assert read_sidecar(snap.path).snapshot_id == snap.manifest.snapshot_id


def test_missing_sidecar_is_rebuilt_and_a_corrupt_file_discarded(tmp_path: Path) -> None:
    good = make_snapshot(tmp_path, 50_000)
    bad = make_snapshot(tmp_path, 50_000, t0=1_800_000_000 * 10**9)
    good.path.with_name(good.path.name + MANIFEST_SUFFIX).unlink()
    bad.path.with_name(bad.path.name + MANIFEST_SUFFIX).unlink()
    raw = bytearray(bad.path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # flip a byte inside a compressed chunk
    bad.path.write_bytes(bytes(raw))
    report = recover(tmp_path)
    assert report.rebuilt == [good.path.name] and report.discarded == [bad.path.name]
    assert [s.path for s in report.complete] == [good.path]
    assert read_sidecar(good.path).sha256 == good.manifest.sha256
    assert not bad.path.exists()


def test_sidecar_that_disagrees_on_size_is_rebuilt(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 10_000)
    side = snap.path.with_name(snap.path.name + MANIFEST_SUFFIX)
    side.write_bytes(b"\x00garbage")
    (done,) = recover(tmp_path).complete
    assert done.manifest.size_bytes == snap.path.stat().st_size


def test_record_v2_carries_the_raw_payload_and_v1_records_still_read() -> None:
    msg = SensorMessage("lidar/top", "l", 5, 7, 3, "lidar_points_v1", b"\x01\x02" * 1000, keyframe=False)
    v2 = msg.to_record()
    assert v2[0] == messages.RECORD_MAGIC and v2.endswith(msg.payload), "payload stored as is, after the head"
    assert messages.from_record(v2) == msg
    assert messages.from_record(msg.to_record_v1()) == msg, "version 1 records stay readable"


def test_incompressible_channels_skip_lz4_and_the_file_reads_back(tmp_path: Path) -> None:
    t0 = 1_700_000_000 * NS
    ev = TriggerEvent(TriggerKind.HARD_BRAKE, t0, t0, t0 + NS, 80, TriggerSource.RULE)
    items = {
        "lidar/top": [(t0 + k * NS // 10, SensorMessage("lidar/top", "l", t0 + k * NS // 10, 0, k, "lidar_points_v1",
                                                        os.urandom(300_000))) for k in range(10)],
        "imu": [(t0 + k * NS // 200, SensorMessage("imu", "i", t0 + k * NS // 200, 0, k, "imu_v1", bytes(64)))
                for k in range(200)],
    }
    snap = write_snapshot(tmp_path, PendingWindow(ev.start_ns, ev.end_ns, (ev,)), items, SnapshotMeta("car", "0"))
    with open(snap.path, "rb") as fh:
        summary = make_reader(fh).get_summary()
    assert summary is not None
    kinds = {summary.channels[cid].topic: ci.compression for ci in summary.chunk_indexes
             for cid in ci.message_index_offsets}
    assert kinds == {"lidar/top": "", "imu": "lz4"}
    with SnapshotReader(snap.path) as reader:
        got = [(t, m) for t, m in reader.messages()]
    assert [t for t, _ in got] == sorted(t for msgs in items.values() for t, _ in msgs)
    lidar = [m for _, m in got if m.topic == "lidar/top"]
    assert [bytes(m.payload) for m in lidar] == [bytes(m.payload) for _, m in items["lidar/top"]]
