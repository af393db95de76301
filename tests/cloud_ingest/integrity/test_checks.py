"""Integrity checks on real snapshot files: what passes, and the reason each kind of damage gets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mcap.writer import Writer

from cloud_ingest.errors import ChecksumMismatch, IntegrityFailure
from cloud_ingest.integrity.checks import SnapshotScan, check_scan, check_sha256, scan_snapshot
from shared import messages
from shared.errors import ContractError
from shared.manifest import SnapshotManifest
from shared.snapshot import MANIFEST_ATTACHMENT, sha256_file
from tests.cloud_ingest.conftest import T0_NS, snapshot_messages, write_snapshot


def test_a_real_snapshot_passes_and_is_scanned_in_full(snapshot: tuple[Path, str]) -> None:
    path, sha = snapshot
    check_sha256(sha256_file(path), sha.upper())
    scan = scan_snapshot(path)
    check_scan(scan, vehicle_id="car-1")
    assert {t: c.times_ns.size for t, c in scan.channels.items()} == {
        "camera/front": 120, "lidar/top": 120, "imu": 600, "vehicle_state": 240}
    assert int(scan.channels["camera/front"].keyframes.sum()) == 12


def test_sha256_mismatch_is_a_checksum_error() -> None:
    with pytest.raises(ChecksumMismatch):
        check_sha256("a" * 64, "b" * 64)


def _fail(scan: SnapshotScan, vehicle: str = "car-1") -> str:
    with pytest.raises(IntegrityFailure) as info:
        check_scan(scan, vehicle_id=vehicle)
    return info.value.reason


def test_each_disagreement_with_the_manifest_has_its_reason(snapshot: tuple[Path, str]) -> None:
    scan = scan_snapshot(snapshot[0])
    m = scan.manifest
    assert _fail(scan, vehicle="car-2") == "vehicle_mismatch"
    chans = tuple(replace(c, count=c.count + 1) if c.topic == "imu" else c for c in m.channels)
    assert _fail(replace(scan, manifest=replace(m, channels=chans))) == "manifest_count_mismatch"
    chans = tuple(replace(c, last_ns=c.last_ns + 1) if c.topic == "imu" else c for c in m.channels)
    assert _fail(replace(scan, manifest=replace(m, channels=chans))) == "manifest_time_mismatch"
    assert _fail(replace(scan, manifest=replace(m, channels=m.channels[1:]))) == "manifest_channels_mismatch"
    assert _fail(replace(scan, manifest=replace(m, end_ns=m.start_ns - 1))) == "manifest_window_invalid"


def test_out_of_order_timestamps_in_the_file_are_caught(tmp_path: Path, h265_units: list[tuple[bytes, bool]],
                                                        kitti_points: bytes) -> None:
    msgs = snapshot_messages(2.0, h265_units, kitti_points)
    imu = [i for i, m in enumerate(msgs) if m.topic == "imu"]
    msgs[imu[10]], msgs[imu[11]] = msgs[imu[11]], msgs[imu[10]]  # written out of order
    path = tmp_path / "ooo.mcap"
    write_snapshot(path, msgs)
    scan = scan_snapshot(path)
    assert _fail(scan) == "timestamps_out_of_order"
    assert np.any(np.diff(scan.channels["imu"].times_ns) < 0)


def test_garbage_and_undecodable_records(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    with pytest.raises(IntegrityFailure) as info:
        scan_snapshot(junk)
    assert info.value.reason == "mcap_invalid"
    path = tmp_path / "rec.mcap"
    manifest = SnapshotManifest(snapshot_id="s", vehicle_id="car-1", created_ns=T0_NS, start_ns=T0_NS,
                                end_ns=T0_NS, triggers=(), channels=(), software_version="0",
                                model_version="m", calibration_version="c")
    with open(path, "wb") as fh:
        w = Writer(fh)
        w.start(profile="avdata", library="test")
        schema = w.register_schema(name="avdata.SensorMessage", encoding="", data=b"")
        w.add_message(w.register_channel("imu", "msgpack", schema), log_time=T0_NS, data=b"\xc1",
                      publish_time=T0_NS)  # a record that is not a SensorMessage envelope
        w.add_attachment(T0_NS, T0_NS, MANIFEST_ATTACHMENT, "application/msgpack", manifest.encode())
        w.finish()
    with pytest.raises(ContractError) as decoded:
        messages.from_record(b"\xc1")
    with pytest.raises(IntegrityFailure) as info:
        scan_snapshot(path)
    assert info.value.reason == decoded.value.reason != "mcap_invalid"  # the record's own reason
