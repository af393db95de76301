"""Segment cutting: one segment up to 40 s, 20-40 s pieces beyond, keyframe-aligned video, stable ids."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cloud_ingest.integrity.checks import scan_snapshot
from cloud_ingest.segments.builder import SnapshotInfo, build_segments, piece_edges, segment_id
from shared.segment import Segment
from tests.cloud_ingest.conftest import NS, T0_NS, snapshot_messages, write_snapshot


@pytest.mark.parametrize(("duration_s", "pieces"), [(12, 1), (40, 1), (41, 2), (80, 2), (81, 3), (200, 5)])
def test_piece_edges_are_20_to_40_s(duration_s: int, pieces: int) -> None:
    edges = piece_edges(T0_NS, T0_NS + duration_s * NS)
    assert len(edges) - 1 == pieces and edges[0] == T0_NS and edges[-1] == T0_NS + duration_s * NS
    lengths = [b - a for a, b in itertools.pairwise(edges)]
    assert all(length <= 40 * NS for length in lengths)
    if pieces > 1:
        assert all(length >= 20 * NS for length in lengths)


def test_a_50_s_snapshot_becomes_two_decodable_pieces(tmp_path: Path, h265_units: list[tuple[bytes, bool]],
                                                     kitti_points: bytes) -> None:
    path = tmp_path / "long.mcap"
    msgs = snapshot_messages(50.0, h265_units, kitti_points)
    sha = write_snapshot(path, msgs, start_ns=T0_NS, end_ns=T0_NS + 50 * NS - 1)
    scan = scan_snapshot(path)
    info = SnapshotInfo("car-1", sha, "raw/2023-11-14/car-1/x/snapshot.mcap", 1)
    segs = build_segments(scan, info)
    assert [s.segment_id for s in segs] == [segment_id("car-1", sha, i) for i in range(2)]
    assert segs[0].end_ns == segs[1].start_ns and (segs[0].end_ns - segs[0].start_ns) == 25 * NS - 1
    # every non-video message is in exactly one piece
    for topic, total in (("lidar/top", 500), ("imu", 2500), ("vehicle_state", 1000)):
        counts = [r.count for s in segs for r in s.streams if r.topic == topic]
        assert sum(counts) == total, topic
    cam = [s.camera_frames[0] for s in segs]
    keyframe_times = {m.t_sensor_ns for m in msgs if m.topic == "camera/front" and m.keyframe}
    assert cam[1].first_ns in keyframe_times and cam[1].first_ns <= segs[1].start_ns
    assert cam[1].first_ns > segs[1].start_ns - NS  # the keyframe just before, not an older one
    assert [len(s.triggers) for s in segs] == [0, 1]  # the brake at 3/4 of the window is in piece 2
    assert segs[1].tags == ("hard_brake",)
    decoded = Segment.decode(segs[1].encode())
    assert decoded.lidar_sweeps == segs[1].lidar_sweeps and decoded.provenance.snapshot_sha256 == (sha,)


def test_ids_are_deterministic_and_distinct() -> None:
    assert segment_id("car-1", "A" * 64, 0) == segment_id("car-1", "a" * 64, 0)
    ids = {segment_id(v, s, i) for v in ("car-1", "car-2") for s in ("a" * 64, "b" * 64) for i in range(3)}
    assert len(ids) == 12
