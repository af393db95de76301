"""The recorder end to end over a real ZeroMQ socket: published drive in, MCAP snapshot out."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from shared.messages import SensorMessage
from shared.payloads import VehicleState, encode_small
from shared.snapshot import SnapshotReader, read_sidecar, sha256_file
from tests.vehicle.conftest import NS, build_drive, decode_h265, make_config, wait_subscriber
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.snapshot.writer import WrittenSnapshot
from vehicle.sources.receiver import Receiver
from vehicle.upload.queue import UploadQueue


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


def test_byte_budget_evictions_are_ring_drops(tmp_path: Path) -> None:
    """Messages evicted to meet the byte budget before max_age_s are lost to every snapshot: drops;
    those that merely aged out are not."""
    cfg = make_config(tmp_path, buffer={"max_bytes": 10_000, "max_age_s": 1.0}, timesync={"expected_hz": {}})
    metrics = VehicleMetrics()
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    rec = Recorder(cfg, metrics, queue)
    t0 = 1_700_000_000 * NS
    for k in range(30):  # 1000 B every 10 ms: the 10 kB budget holds 10 of them
        rec.ingest(SensorMessage("lidar/top", "l", t0 + k * NS // 100, t0, k, "raw", bytes(1000)))
    rec.ingest(SensorMessage("imu", "i", t0 + 3 * NS, t0, 0, "raw", b"x"))  # ages the last 10 out
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "ring", "reason": "bytes"}) == 20
    assert metrics.value("avdata_vehicle_buffer_evictions_total", {"topic": "lidar/top", "cause": "age"}) == 10
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "ring", "reason": "age"}) == 0
    rec.close()
    queue.close()


def test_each_lost_message_is_counted_once(tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str]) -> None:
    """On a topic with an expected rate (imu, 200 Hz), over a real socket: a message lost on the
    socket is a socket drop only, a sample the sensor never sent is a source drop only, and a
    refused message is a decode drop only, never also a gap."""
    sock, endpoint = xpub
    cfg = make_config(tmp_path, endpoint, sources={"max_payload_bytes": 100})
    metrics = VehicleMetrics()
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    rec = Recorder(cfg, metrics, queue, receiver=Receiver(cfg.sources.endpoints, metrics, max_payload_bytes=100))
    wait_subscriber(sock)
    t0, period = 1_700_000_000 * NS, NS // 200
    slot, good = 0, 0
    for seq in range(50):
        if seq == 20:
            slot += 3                                   # the sensor skipped three samples
        frames = SensorMessage("imu", "imu0", t0 + slot * period, 0, seq, "imu_v1", b"x" * 8).to_frames()
        slot += 1
        if seq in (10, 11):                             # lost on the socket
            continue
        if seq == 30:
            frames[2] = bytes(500)                      # oversized: refused, header readable
        elif seq == 40:
            frames[1] = b"\xc1not a header"             # malformed: refused, header unreadable
        else:
            good += 1
        sock.send_multipart(frames)
    received, deadline = 0, time.monotonic() + 5
    while received < good and time.monotonic() < deadline:
        received += rec.poll(50)
    assert received == good == 46

    def drops(stage: str, reason: str) -> float:
        return metrics.value("avdata_vehicle_drops_total", {"stage": stage, "reason": reason})

    assert drops("socket", "seq_gap") == 2
    assert drops("source", "missed_sample") == 3
    assert drops("decode", "oversized") == 1 and drops("decode", "malformed") == 1
    total = sum(s.value for f in metrics.registry.collect() if f.name == "avdata_vehicle_drops"
                for s in f.samples if s.name.endswith("_total"))
    assert total == 50 + 3 - 46, "every message sent or skipped is received or counted exactly once"
    assert metrics.value("avdata_vehicle_stream_gaps_total", {"topic": "imu"}) == 4, "every gap is still an event"
    rec.close()
    queue.close()


def _state(t_ns: int, seq: int, accel_mps2: float) -> SensorMessage:
    body = encode_small(VehicleState(0.0, 0.0, 0.0, 15.0, accel_mps2, 0.0, 0.0, True))
    return SensorMessage("vehicle_state", "vs", t_ns, t_ns, seq, "vehicle_state_v1", body)


def _camera(t_ns: int, seq: int) -> SensorMessage:
    return SensorMessage("camera/front", "cam", t_ns, t_ns, seq, "h265", b"\x00" * 64, keyframe=True)


def test_the_cut_waits_for_slower_sensors_and_counts_what_comes_later(tmp_path: Path) -> None:
    """Cameras arrive behind vehicle state (encoder latency): the window is cut only once vehicle
    state is ``max_latency_s`` past its end, so a camera frame 0.3 s late is in the snapshot; one
    that arrives after the cut is counted as ``drops{stage="snapshot", reason="late"}``."""
    cfg = make_config(tmp_path, sources={"max_latency_s": 0.5})
    metrics = VehicleMetrics()
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    recorder = Recorder(cfg, metrics, queue)
    t0, step = 1_700_000_000 * NS, NS // 50
    try:
        # 3 s of vehicle state at 50 Hz, braking hard from 1 s: the rule fires at 1.2 s, window [0.2 s, 2.2 s].
        late_frames: dict[int, SensorMessage] = {}
        for k in range(150):
            t = t0 + k * step
            recorder.ingest(_state(t, k, -6.0 if k >= 50 else 0.0))
            if k % 5 == 0:  # a 10 Hz camera whose frames arrive 0.3 s after they were taken
                late_frames[t + 15 * step] = _camera(t, k // 5)
            for due in [d for d in late_frames if d <= t]:
                recorder.ingest(late_frames.pop(due))
        straggler = _camera(t0 + 2 * NS, 999)  # taken inside the window, delivered after the cut
        recorder.ingest(straggler)
        snaps = [f.result(10) for f in recorder._inflight]
    finally:
        recorder.close()
        queue.close()
    (snap,) = [s for s in snaps if s is not None]
    (event,) = snap.manifest.triggers
    cam = snap.manifest.channel("camera/front")
    assert cam is not None
    # Every frame taken in [start, end] is in, including those delivered up to 0.3 s after `end`.
    in_window = [t for t in range(t0, t0 + 150 * step, 5 * step) if event.start_ns <= t <= event.end_ns]
    assert cam.count == len(in_window) and cam.last_ns == max(in_window)
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "snapshot", "reason": "late"}) == 1
