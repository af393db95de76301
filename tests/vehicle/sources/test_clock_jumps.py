"""Clock jumps: the vehicle's wall clock stepping, and one sensor's clock stepping, mid-stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import zmq

from shared.messages import SensorMessage
from tests.vehicle.conftest import NS, build_drive, make_config, wait_subscriber
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.sources.receiver import Receiver, SteadyClock
from vehicle.upload.queue import UploadQueue

HOUR = 3600 * NS


class SteppingWall:
    """A fake system clock: follows a monotonic source plus NTP steps injected by the test."""

    def __init__(self, mono: list[int]) -> None:
        self.mono, self.step_ns = mono, 0

    def __call__(self) -> int:
        return 1_700_000_000 * NS + self.mono[0] + self.step_ns


def test_steady_clock_ignores_wall_clock_steps() -> None:
    mono = [0]
    wall = SteppingWall(mono)
    clock = SteadyClock(wall_ns=wall, monotonic_ns=lambda: mono[0])
    before = clock()
    mono[0] += NS
    wall.step_ns = -HOUR
    assert clock() - before == NS, "a step back of the wall clock does not move the vehicle clock"
    wall.step_ns = +HOUR
    mono[0] += NS
    assert clock() - before == 2 * NS


def _record(tmp_path: Path, msgs: list[SensorMessage], stamp: Any, correct: bool) -> list[tuple[Any, ...]]:
    """Ingest ``msgs`` stamped by ``stamp(msg)``; returns each snapshot's window, triggers and counts."""
    cfg = make_config(tmp_path, timesync={"correct": correct, "expected_hz": {}, "block_s": 0.2},
                      buffer={"max_age_s": 2.0},
                      triggers={"hard_brake": {"kind": "hard_brake", "decel_mps2": 4.0, "min_duration_s": 0.2,
                                               "cooldown_s": 30.0, "pre_s": 1.0, "post_s": 0.5}})
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    metrics = VehicleMetrics()
    rec = Recorder(cfg, metrics, queue)
    for m in msgs:
        rec.ingest(m.stamped(stamp(m)))
    snaps = rec.flush(30)
    rec.close()
    queue.close()
    evicted = metrics.value("avdata_vehicle_buffer_evictions_total", {"topic": "imu", "cause": "age"})
    steps = sum(metrics.value("avdata_vehicle_clock_steps_total", {"topic": t})
                for t in ("imu", "lidar/top", "camera/front", "vehicle_state"))
    return [(s.manifest.start_ns, s.manifest.end_ns, [t.t_ns for t in s.manifest.triggers],
             {c.topic: c.count for c in s.manifest.channels}, evicted, steps) for s in snaps]


def test_wall_clock_steps_move_no_window_eviction_or_cooldown(tmp_path: Path, h265_clip: Any) -> None:
    t0 = 1_700_000_000 * NS
    # Two brakes 2 s apart: the 30 s cooldown must keep the second from cutting a second snapshot.
    msgs = build_drive(t0, 5.0, h265_clip, brake_at_s=1.5, brake_for_s=0.3)
    second = build_drive(t0, 5.0, h265_clip, brake_at_s=3.5, brake_for_s=0.3)
    states = {m.t_sensor_ns: m for m in second if m.topic == "vehicle_state"}
    msgs = [states.get(m.t_sensor_ns, m) if m.topic == "vehicle_state" and m.t_sensor_ns >= t0 + 3 * NS else m
            for m in msgs]
    baseline = _record(tmp_path / "a", msgs, lambda m: m.t_sensor_ns + 2_000_000, correct=True)
    assert len(baseline) == 1 and baseline[0][4] > 0, "one snapshot, and the 2 s age limit evicts"

    def stepped(make_clock: Any) -> Any:
        mono = [0]
        wall = SteppingWall(mono)
        clock = make_clock(wall, mono)

        def stamp(m: SensorMessage) -> int:
            mono[0] = m.t_sensor_ns - t0 + 2_000_000
            wall.step_ns = -HOUR if mono[0] > 2 * NS else 0       # NTP steps back an hour...
            wall.step_ns = +HOUR if mono[0] > 3 * NS else wall.step_ns  # ...then forward an hour
            return int(clock())
        return stamp

    steady = stepped(lambda wall, mono: SteadyClock(wall_ns=wall, monotonic_ns=lambda: mono[0]))
    raw_wall = stepped(lambda wall, mono: wall)
    on_steady = _record(tmp_path / "b", msgs, steady, correct=True)
    on_raw_wall_uncorrected = _record(tmp_path / "c", msgs, raw_wall, correct=False)
    assert [s[:5] for s in on_steady] == [s[:5] for s in baseline]
    assert on_steady[0][5] == 0, "the steady clock never steps, so no sensor looks stepped"
    # Uncorrected, buffer times are sensor times: windows, cooldowns and ages are untouched.
    uncorrected = _record(tmp_path / "d", msgs, lambda m: m.t_sensor_ns + 2_000_000, correct=False)
    assert [s[:5] for s in on_raw_wall_uncorrected] == [s[:5] for s in uncorrected]
    assert on_raw_wall_uncorrected[0][5] >= 4, "stamped by the raw wall clock, every topic sees the steps"


class StepPublisher(threading.Thread):
    """Publishes IMU and LiDAR on sensor clocks 3 s behind the vehicle; LiDAR's clock steps +2 s."""

    def __init__(self, sock: zmq.Socket[bytes], clock: SteadyClock, n: int, step_at: int) -> None:
        super().__init__(daemon=True)
        self.sock, self.clock, self.n, self.step_at = sock, clock, n, step_at

    def run(self) -> None:
        for k in range(self.n):
            now = self.clock()
            lidar_t = now - 3 * NS + (2 * NS if k >= self.step_at else 0)
            self.sock.send_multipart(SensorMessage("imu", "imu", now - 3 * NS, 0, k, "imu_v1", b"i" * 64)
                                     .to_frames())
            self.sock.send_multipart(SensorMessage("lidar/top", "lidar", lidar_t, 0, k, "lidar_points_v1",
                                                   b"l" * 4096).to_frames())
            time.sleep(0.004)


def test_sensor_clock_step_is_detected_counted_and_reconverges(
        tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str]) -> None:
    sock, endpoint = xpub
    cfg = make_config(tmp_path, endpoint, timesync={"correct": True, "expected_hz": {}, "block_s": 0.05})
    metrics = VehicleMetrics()
    clock = SteadyClock()
    receiver = Receiver(cfg.sources.endpoints, metrics, clock_ns=clock)
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    rec = Recorder(cfg, metrics, queue, receiver=receiver)
    wait_subscriber(sock)
    n, step_at = 300, 150
    pub = StepPublisher(sock, clock, n, step_at)
    pub.start()
    got = 0
    deadline = time.monotonic() + 20
    while got < 2 * n and time.monotonic() < deadline:
        got += rec.poll(100)
    pub.join(5)
    items = rec.buffer.window(0, 2**62)
    rec.close()
    queue.close()
    assert got == 2 * n
    assert metrics.value("avdata_vehicle_clock_steps_total", {"topic": "lidar/top"}) == 1
    assert metrics.value("avdata_vehicle_clock_steps_total", {"topic": "imu"}) == 0
    # Every LiDAR sweep, before, during and after the step, sits on the vehicle clock within the
    # transport delay (the fit would be 2 s off for many blocks without step detection).
    lidar = items["lidar/top"]
    assert len(lidar) == n
    errors_ms = [abs(t - m.t_recv_ns) / 1e6 for t, m in lidar]
    assert max(errors_ms) < 100, max(errors_ms)
