"""The recorder end to end over a real ZeroMQ socket: published drive in, MCAP snapshot out."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from shared.snapshot import SnapshotReader, read_sidecar, sha256_file
from tests.vehicle.conftest import NS, build_drive, decode_h265, make_config, wait_subscriber
from vehicle.metrics import VehicleMetrics
from vehicle.receiver import Receiver
from vehicle.recorder import Recorder
from vehicle.snapshot_writer import WrittenSnapshot
from vehicle.upload_queue import UploadQueue


def _recorder(tmp_path: Path, endpoint: str) -> tuple[Recorder, UploadQueue, list[WrittenSnapshot]]:
    cfg = make_config(tmp_path, endpoint)
    metrics = VehicleMetrics()
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    written: list[WrittenSnapshot] = []
    rx = Receiver(cfg.sources.endpoints, metrics, rcvhwm=cfg.sources.rcvhwm)
    return Recorder(cfg, metrics, queue, receiver=rx, on_snapshot=written.append), queue, written


def test_snapshot_holds_exactly_the_window(tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str],
                                           h265_clip: list[tuple[bytes, bool]]) -> None:
    sock, endpoint = xpub
    rec, queue, written = _recorder(tmp_path, endpoint)
    wait_subscriber(sock)
    t0 = 1_700_000_000 * NS
    drive = build_drive(t0, 4.0, h265_clip, brake_at_s=2.0, brake_for_s=0.6)
    for msg in drive:
        sock.send_multipart(msg.to_frames())
    deadline = time.monotonic() + 10
    received = 0
    while received < len(drive) and time.monotonic() < deadline:
        received += rec.poll(50)
    rec.flush(10)
    assert received == len(drive)
    assert len(written) == 1, "one hard brake, one snapshot"
    snap = written[0]
    (trigger,) = snap.manifest.triggers
    assert trigger.t_ns == t0 + round(2.2 * NS)  # 0.2 s of sustained braking completed the rule
    start, end = trigger.start_ns, trigger.end_ns
    with SnapshotReader(snap.path) as reader:
        got: dict[str, list[int]] = {}
        video: list[tuple[bytes, bool]] = []
        for log_time, msg in reader.messages():
            assert log_time == msg.t_sensor_ns
            got.setdefault(msg.topic, []).append(msg.t_sensor_ns)
            if msg.topic == "camera/front":
                video.append((bytes(msg.payload), msg.keyframe))
    for topic in ("lidar/top", "imu", "vehicle_state"):
        expected = [m.t_sensor_ns for m in drive if m.topic == topic and start <= m.t_sensor_ns <= end]
        assert got[topic] == expected, topic
    cams = [m for m in drive if m.topic == "camera/front"]
    first_key = max(m.t_sensor_ns for m in cams if m.keyframe and m.t_sensor_ns <= start)
    assert got["camera/front"] == [m.t_sensor_ns for m in cams if first_key <= m.t_sensor_ns <= end]
    assert video[0][1], "video starts at a keyframe"
    assert decode_h265([p for p, _ in video]) == len(video), "the clip decodes on its own"
    side = read_sidecar(snap.path)
    assert side.sha256 == sha256_file(snap.path)
    assert snap.path.name.startswith("test-car_20231114T221")
    (entry,) = queue.entries()
    assert (entry.snapshot_id, entry.state, entry.priority) == (snap.manifest.snapshot_id, "pending", 80)
    rec.close()
    queue.close()


def test_flush_cuts_a_pending_window_with_what_is_buffered(
        tmp_path: Path, h265_clip: list[tuple[bytes, bool]]) -> None:
    cfg = make_config(tmp_path)
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    rec = Recorder(cfg, VehicleMetrics(), queue)
    t0 = 1_700_000_000 * NS
    drive = build_drive(t0, 2.6, h265_clip, brake_at_s=2.0, brake_for_s=0.6)  # ends before t + post_s
    for msg in drive:
        rec.ingest(msg.stamped(msg.t_sensor_ns + 1000))
    assert queue.entries() == [] and len(rec.planner.pending) == 1
    (snap,) = rec.flush(10)
    imu = [m for m in drive if m.topic == "imu" and m.t_sensor_ns >= snap.manifest.start_ns]
    assert snap.manifest.channel("imu") is not None
    assert snap.manifest.channel("imu").count == len(imu)  # type: ignore[union-attr]
    assert [e.snapshot_id for e in queue.entries()] == [snap.manifest.snapshot_id]
    rec.close()
    queue.close()
