"""The full seed sensor suite, in real time, into the real recorder process.

Suite: 8 cameras at 30 fps (H.265 from PyAV/libx265, one clip of the real nuScenes front image
panning, encoded once and looped), 2 LiDARs at 10 Hz (the real nuScenes sweep tiled to ~104k
points), 5 radars at 20 Hz (64 returns), IMU 200 Hz, GNSS 10 Hz, vehicle state 50 Hz. The
publisher is :class:`vehicle.replay.publish.Replayer` at speed 1 (real time); the recorder is
``avdata-vehicle record`` in its own process.

Figures: messages the recorder received vs published (ratio 1.0 = no drop), the recorder's CPU
(cores, from /proc/<pid>/stat utime+stime) vs a budget of 1 core, and the suite's data rate vs
the raw pyzmq XPUB→SUB rate of the same frames on this machine (the publisher's limit).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import zmq
from PIL import Image

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, GnssFix, ImuSample, VehicleState, encode_points, encode_small
from vehicle.replay.publish import Replayer

NS = 1_000_000_000
REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real" / "nuscenes"
CAM_IMAGE = "n015-2018-07-24-11-22-45+0800__CAM_FRONT__1532402927612460.jpg"
LIDAR_SWEEP = "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"


def camera_clip(n_frames: int, width: int, height: int) -> list[tuple[bytes, bool]]:
    """H.265 access units of the real front image panning 4 px per frame (keyframe each 30)."""
    img = np.asarray(Image.open(REAL / CAM_IMAGE).convert("RGB").resize((width, height)))
    ctx: Any = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), 30
    ctx.options = {"preset": "ultrafast",
                   "x265-params": "keyint=30:min-keyint=30:bframes=0:repeat-headers=1:log-level=error"}
    out: list[tuple[bytes, bool]] = []
    for i in range(n_frames):
        frame = av.VideoFrame.from_ndarray(np.roll(img, 4 * i, axis=1), format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    return out + [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]


def lidar_sweep(copies: int = 3) -> bytes:
    """The real nuScenes sweep (x, y, z, intensity, ring) tiled ``copies`` times, as lidar_points_v1."""
    raw = np.fromfile(REAL / LIDAR_SWEEP, dtype="<f4").reshape(-1, 5)
    pts = np.zeros(len(raw) * copies, dtype=LIDAR_DTYPE)
    for name, col in (("x", 0), ("y", 1), ("z", 2), ("intensity", 3)):
        pts[name] = np.tile(raw[:, col], copies)
    pts["ring"] = np.tile(raw[:, 4], copies).astype(np.uint16)
    pts["t_offset_ns"] = np.linspace(0, 100_000_000, len(pts), endpoint=False).astype(np.int32)
    return bytes(encode_points(pts, LIDAR_DTYPE))


def suite(duration_s: float, clip: list[tuple[bytes, bool]], sweep: bytes, t0_ns: int) -> list[SensorMessage]:
    """Every message of the suite over ``duration_s``, sorted by sensor time."""
    rng = np.random.default_rng(0)
    radar = np.zeros(64, dtype=RADAR_DTYPE)
    radar["range_m"] = rng.uniform(1, 150, 64)
    radar_bytes = bytes(encode_points(radar, RADAR_DTYPE))
    imu = encode_small(ImuSample((0.1, 0.0, 9.81), (0.0, 0.0, 0.01)))
    gnss = encode_small(GnssFix(37.72, -122.47, 31.6, 4, 0.02))
    state = encode_small(VehicleState(0.0, 0.0, 0.0, 15.0, 0.0, 0.0, 0.0, True))
    streams: list[tuple[str, float, str, Any]] = [
        *((f"camera/{i}", 30.0, "h265", lambda k: clip[k % len(clip)]) for i in range(8)),
        *((f"lidar/{i}", 10.0, "lidar_points_v1", lambda k: (sweep, False)) for i in range(2)),
        *((f"radar/{i}", 20.0, "radar_v1", lambda k: (radar_bytes, False)) for i in range(5)),
        ("imu", 200.0, "imu_v1", lambda k: (imu, False)), ("gnss", 10.0, "gnss_v1", lambda k: (gnss, False)),
        ("vehicle_state", 50.0, "vehicle_state_v1", lambda k: (state, False)),
    ]
    msgs: list[SensorMessage] = []
    for j, (topic, hz, enc, payload_at) in enumerate(streams):
        phase_ns = round(j * NS / hz / len(streams))  # sensors are not phase-locked
        for k in range(int(duration_s * hz)):
            payload, key = payload_at(k)
            msgs.append(SensorMessage(topic, topic, t0_ns + phase_ns + round(k * NS / hz), 0, k, enc, payload, key))
    return sorted(msgs, key=lambda m: m.t_sensor_ns)


def raw_send_rate(msgs: list[SensorMessage]) -> float:
    """MB/s of the same frames over raw pyzmq XPUB→SUB on loopback, as fast as they go."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub, sub = ctx.socket(zmq.XPUB), ctx.socket(zmq.SUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    pub.recv()
    frames = [m.to_frames() for m in msgs]
    drain = threading.Thread(target=lambda: [sub.recv_multipart(copy=False) for _ in frames])
    drain.start()
    started = time.perf_counter()
    for f in frames:
        pub.send_multipart(f, copy=len(f[2]) < 65536)
    drain.join()
    elapsed = time.perf_counter() - started
    pub.close(0)
    sub.close(0)
    ctx.term()
    return sum(len(m.payload) for m in msgs) / elapsed / 1e6


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _received(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("avdata_vehicle_messages_received_total{"))


def _config(tmp: Path, endpoint: str, metrics_port: int) -> Path:
    path = tmp / "vehicle.toml"
    path.write_text(f'vehicle_id = "bench"\ndata_dir = "{tmp / "data"}"\n[sources]\nendpoints = ["{endpoint}"]\n'
                    f"[buffer]\nmax_age_s = 30.0\nmax_bytes = 4294967296\n[metrics]\nport = {metrics_port}\n")
    return path


def run(quick: bool = False) -> list[Figure]:
    duration_s = 2.0 if quick else 20.0
    clip = camera_clip(10, 640, 360) if quick else camera_clip(30, 1600, 900)
    msgs = suite(duration_s, clip, lidar_sweep(), time.time_ns())
    limit_mbs = raw_send_rate(msgs[: len(msgs) // (1 if quick else 5)])
    offered_mbs = sum(len(m.payload) for m in msgs) / duration_s / 1e6
    with tempfile.TemporaryDirectory() as tmp_dir, Replayer("tcp://127.0.0.1:*") as rep:
        tmp = Path(tmp_dir)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            metrics_port = probe.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "vehicle.cli", "--log-level", "warning", "record",
                                 "--config", str(_config(tmp, rep.endpoint, metrics_port))],
                                stderr=subprocess.DEVNULL)
        try:
            rep.wait_subscriber(30.0)
            cpu0, wall0 = _cpu_s(proc.pid), time.monotonic()
            report = rep.publish(msgs, 1.0)
            deadline = time.monotonic() + 10.0
            while (got := _received(metrics_port)) < len(msgs) and time.monotonic() < deadline:
                time.sleep(0.05)
            cores = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - wall0)
        finally:
            proc.terminate()
            proc.wait(30)
    note = f"{len(msgs)} msgs in {duration_s:g} s, publisher max lateness {report.max_late_s * 1e3:.1f} ms"
    return [
        Figure("fullsuite_messages_delivered", got, "msgs", float(len(msgs)), "messages published", note=note),
        Figure("fullsuite_recorder_cpu", cores, "cores", 1.0, "1 core budget", higher_is_better=False),
        Figure("fullsuite_data_rate", offered_mbs, "MB/s", limit_mbs, "raw pyzmq XPUB/SUB, same frames",
               note="real-time suite rate vs the publisher's raw send rate"),
    ]


if __name__ == "__main__":
    main_for(run)
