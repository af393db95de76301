"""Recorder ingest (SUB → decode → time sync → ring buffer) vs raw pyzmq PUB/SUB, same run.

Two message sizes: 1 MiB (camera/LiDAR-like) and 64 B (IMU-like). The publisher runs in a thread
of this process over tcp loopback in both cases, so the ratio isolates our per-message work.
"""

from __future__ import annotations

import threading
import time

import zmq

from bench.common import Figure, main_for
from shared.messages import SensorMessage
from vehicle.config.tree import VehicleConfig
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.sources.receiver import Receiver
from vehicle.upload.queue import UploadQueue

NS = 1_000_000_000


def _publish(sock: zmq.Socket[bytes], frames: list[list[bytes]]) -> None:
    while not sock.poll(100):  # XPUB: wait for the subscription
        pass
    sock.recv()
    for f in frames:
        sock.send_multipart(f, copy=len(f[2]) < 65536)


def _frames(n: int, size: int) -> list[list[bytes]]:
    payload = b"\x01" * size
    out = []
    for i in range(n):
        f = SensorMessage("imu" if size < 1024 else "lidar/top", "s", i * NS // 200, 0, i, "imu_v1",
                          payload).to_frames()
        out.append([bytes(x) for x in f])
    return out


def _raw(ctx: zmq.Context[zmq.Socket[bytes]], frames: list[list[bytes]]) -> float:
    pub: zmq.Socket[bytes] = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub: zmq.Socket[bytes] = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    th = threading.Thread(target=_publish, args=(pub, frames))
    th.start()
    sub.poll()
    started = time.perf_counter()
    for _ in frames:
        sub.recv_multipart(copy=False)
    elapsed = time.perf_counter() - started
    th.join()
    pub.close(0)
    sub.close(0)
    return elapsed


def _ours(ctx: zmq.Context[zmq.Socket[bytes]], frames: list[list[bytes]], tmp: str) -> float:
    from pathlib import Path

    pub: zmq.Socket[bytes] = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    cfg = VehicleConfig(vehicle_id="bench", data_dir=Path(tmp))
    metrics = VehicleMetrics()
    rx = Receiver((f"tcp://127.0.0.1:{port}",), metrics, rcvhwm=0, context=ctx)
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    rec = Recorder(cfg, metrics, queue, receiver=rx)
    th = threading.Thread(target=_publish, args=(pub, frames))
    th.start()
    rx.wait(10_000)
    started = time.perf_counter()
    got = 0
    while got < len(frames):
        got += rec.poll(1000)
    elapsed = time.perf_counter() - started
    th.join()
    rec.close()
    queue.close()
    pub.close(0)
    return elapsed


def run(quick: bool = False) -> list[Figure]:
    import tempfile

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    out: list[Figure] = []
    for label, size, n in (("1MiB", 1024 * 1024, 100 if quick else 1000),
                           ("imu_64B", 64, 20_000 if quick else 200_000)):
        frames = _frames(n, size)
        raw_s = _raw(ctx, frames)
        with tempfile.TemporaryDirectory() as tmp:
            ours_s = _ours(ctx, frames, tmp)
        if size >= 1024:
            out.append(Figure(f"recorder_ingest_{label}", n * size / ours_s / 1e6, "MB/s",
                              n * size / raw_s / 1e6, "raw pyzmq PUB/SUB"))
        else:
            out.append(Figure(f"recorder_ingest_{label}", n / ours_s, "msg/s", n / raw_s,
                              "raw pyzmq PUB/SUB"))
    ctx.term()
    return out


if __name__ == "__main__":
    main_for(run)
