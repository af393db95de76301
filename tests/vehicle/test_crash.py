"""kill -9 while snapshots are being written: after restarts, no corrupt snapshot is ever queued."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq

from shared.messages import SensorMessage
from shared.snapshot import SnapshotReader, sha256_file
from tests.vehicle.conftest import NS, state_payload
from tests.vehicle.test_cli import wait_for
from vehicle.config.tree import load_config
from vehicle.upload.queue import UploadQueue

CONFIG = """
vehicle_id = "crash-car"
data_dir = "{data}"
[sources]
endpoints = ["{endpoint}"]
max_latency_s = 0.0  # one publisher sends every topic in order: nothing arrives late
[timesync]
expected_hz = {{}}
[triggers.sample]
kind = "random"
probability = 1.0
period_s = 0.5
pre_s = 1.6
post_s = 0.1
cooldown_s = 0.0
"""


class Publisher(threading.Thread):
    """Publishes 2 MB LiDAR sweeps and vehicle states, sensor time running 4x wall time."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        super().__init__(daemon=True)
        self.sock, self.stop, self.t_ns, self.seq = sock, threading.Event(), 1_700_000_000 * NS, 0
        self.sweep = os.urandom(2 * 1024 * 1024)
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                for k in range(5):
                    t = self.t_ns + k * NS // 50
                    self.sock.send_multipart(SensorMessage("vehicle_state", "vs", t, 0, self.seq * 5 + k,
                                                           "vehicle_state_v1", state_payload()).to_frames())
                self.sock.send_multipart(SensorMessage("lidar/top", "lidar", self.t_ns, 0, self.seq,
                                                       "lidar_points_v1", self.sweep).to_frames())
                self.t_ns += NS // 10
                self.seq += 1
            time.sleep(0.025)


def test_sigkill_mid_write_never_queues_a_corrupt_snapshot(tmp_path: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pub: zmq.Socket[bytes] = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
    cfg_path = tmp_path / "vehicle.toml"
    cfg_path.write_text(CONFIG.format(data=tmp_path / "data", endpoint=endpoint))
    snaps = tmp_path / "data" / "snapshots"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "n.sock"))
    notify.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "n.sock")}
    cmd = [sys.executable, "-m", "vehicle.cli", "--log-level", "warning", "record", "--config", str(cfg_path)]
    publisher = Publisher(pub)
    rng = random.Random(11)
    kills_mid_write = 0
    try:
        for cycle in range(5):
            proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
            wait_for(notify, "READY=1")
            with publisher.lock:  # drain subscription notices of the new connection
                while pub.poll(2000):
                    if pub.recv()[0] == 1:
                        break
            if not publisher.is_alive():
                publisher.start()
            deadline = time.monotonic() + 8
            while not list(snaps.glob("*.active")) and time.monotonic() < deadline:
                time.sleep(0.002)
            if cycle < 4:
                time.sleep(rng.uniform(0, 0.008))
                kills_mid_write += bool(list(snaps.glob("*.active")))
                proc.send_signal(signal.SIGKILL)
                assert proc.wait(10) == -signal.SIGKILL
            else:
                time.sleep(0.5)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
    finally:
        publisher.stop.set()
        publisher.join(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pub.close(linger=0)
        notify.close()
    assert kills_mid_write >= 2, "the test must actually kill during writes"
    cfg = load_config(cfg_path)
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    entries = queue.entries()
    assert len(entries) >= 3
    for entry in entries:
        path = queue.path(entry)
        assert sha256_file(path) == entry.sha256 and path.stat().st_size == entry.size_bytes
        with SnapshotReader(path) as reader:
            assert sum(1 for _ in reader.messages()) == sum(c.count for c in reader.manifest.channels) > 0
    assert not list(snaps.glob("*.active")), "the clean stop leaves no partial file"
    queue.close()
