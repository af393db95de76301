"""Trigger, manifest, calibration and Segment contracts: round trips and typed failures."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from shared import wire
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics
from shared.errors import MalformedMessage, TruncatedMessage, UnknownVersion
from shared.manifest import ChannelSummary, SnapshotManifest
from shared.segment import Provenance, Segment, Source, StreamRef
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource

TRIGGER = TriggerEvent(TriggerKind.HARD_BRAKE, t_ns=10_000, start_ns=0, end_ns=20_000, priority=80,
                       source=TriggerSource.RULE, name="hard_brake", scores={"decel_mps2": 6.2})
CALIB = CalibrationBundle(
    vehicle_id="car-1", version="2026-11-01", valid_from_ns=0, valid_to_ns=None,
    cameras=(CameraIntrinsics("cam0", 1600, 900, 1266.4, 1266.4, 816.3, 491.5, "plumb_bob",
                              (0.1, -0.2, 0.0, 0.0, 0.01)),),
    extrinsics=(SensorExtrinsics("cam0", (0.5, -0.5, 0.5, -0.5), (1.7, 0.0, 1.5)),),
    time_offsets_ns={"cam0": -1500},
)


def _segment(**over: object) -> Segment:
    ref = StreamRef("camera/front", "cam0", "h265", "raw/2026-11-22/car-1/x/snapshot.mcap", 300, 0, 10)
    base: dict[str, object] = dict(
        segment_id=str(uuid.uuid4()), vehicle_id="car-1", start_ns=0, end_ns=20_000_000_000,
        camera_frames=(ref,), lidar_sweeps=(), radar_returns=(), vehicle_states=(),
        map_context={"road_type": "highway"}, calibration=CALIB, triggers=(TRIGGER,),
        visual_embedding=np.arange(512, dtype=np.float32), bev_embedding=None,
        language_description="hard brake behind a lead car", tags=("hard_brake",), source=Source.REAL,
        provenance=Provenance(("snap-1",), ("ab" * 32,), "0.1.0", "yolox_nano", "cloud-1", 123),
    )
    base.update(over)
    return Segment(**base)  # type: ignore[arg-type]


def test_trigger_round_trip() -> None:
    assert TriggerEvent.decode(TRIGGER.encode()) == TRIGGER


def test_trigger_with_unknown_kind_is_malformed() -> None:
    body = TRIGGER.to_body() | {"kind": "teleport"}
    with pytest.raises(MalformedMessage, match="teleport"):
        TriggerEvent.decode(wire.pack("avdata.TriggerEvent", 1, body))


def test_manifest_round_trip_and_channel_lookup() -> None:
    ch = ChannelSummary("imu", "imu0", "imu_v1", 200, 0, 990, 12_000)
    m = SnapshotManifest("snap", "car-1", 5, 0, 1000, (TRIGGER,), (ch,), "0.1.0", "m", "c")
    m2 = SnapshotManifest.decode(m.with_file("ff" * 32, 4096).encode())
    assert m2.sha256 == "ff" * 32 and m2.size_bytes == 4096
    assert m2.channel("imu") == ch and m2.channel("lidar") is None
    assert m2.triggers == (TRIGGER,)


def test_manifest_of_unknown_version_is_typed() -> None:
    ch = ChannelSummary("imu", "imu0", "imu_v1", 1, 0, 0, 1)
    body = SnapshotManifest("s", "v", 0, 0, 0, (), (ch,), "a", "b", "c").to_body()
    with pytest.raises(UnknownVersion):
        SnapshotManifest.decode(wire.pack("avdata.SnapshotManifest", 2, body))


def test_calibration_round_trip() -> None:
    assert CalibrationBundle.decode(CALIB.encode()) == CALIB


def test_calibration_with_short_quaternion_is_malformed() -> None:
    body = CALIB.to_body()
    body["extrinsics"][0]["rotation_wxyz"] = [1.0, 0.0, 0.0]
    with pytest.raises(MalformedMessage, match="expected 4 numbers"):
        CalibrationBundle.decode(wire.pack("avdata.CalibrationBundle", 1, body))


def test_segment_round_trip_has_every_seed_field() -> None:
    seg = _segment()
    back = Segment.decode(seg.encode())
    for name in ("segment_id", "vehicle_id", "start_ns", "end_ns", "camera_frames", "lidar_sweeps",
                 "radar_returns", "vehicle_states", "map_context", "calibration", "triggers",
                 "language_description", "tags", "source", "provenance"):
        assert getattr(back, name) == getattr(seg, name), name
    assert back.visual_embedding is not None and seg.visual_embedding is not None and np.array_equal(back.visual_embedding, seg.visual_embedding)
    assert back.bev_embedding is None


def test_segment_rejects_wrong_embedding_shape_and_reversed_time() -> None:
    with pytest.raises(MalformedMessage, match=r"visual_embedding must have shape \(512,\)"):
        _segment(visual_embedding=np.zeros(10, dtype=np.float32))
    with pytest.raises(MalformedMessage, match="end_ns before start_ns"):
        _segment(start_ns=10, end_ns=5)


def test_segment_truncated_bytes_are_typed() -> None:
    data = _segment().encode()
    with pytest.raises(TruncatedMessage):
        Segment.decode(data[: len(data) // 2])


def test_segment_with_bad_source_is_malformed() -> None:
    body = _segment().to_body() | {"source": "IMAGINED"}
    with pytest.raises(MalformedMessage, match="IMAGINED"):
        Segment.decode(wire.pack("avdata.Segment", 1, body))
