"""The vehicle's three processes wired together, as systemd runs them: ``avdata-vehicle record``,
``infer`` and ``upload`` on one ``vehicle.toml``, fed over a real ZeroMQ socket with real H.265 of
the KITTI frame (and frames of pure noise), uploading to a real tus server, scraped over HTTP,
stopped with SIGTERM. Also: ZeroMQ high-water-mark drops seen through sequence gaps, and the unit
files checked against each other and by ``systemd-analyze verify``."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import zmq
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from shared.messages import SensorMessage
from shared.model_scores import decode_scores
from shared.snapshot import SnapshotReader, sha256_file
from tests.helpers import require
from tests.vehicle.conftest import state_payload
from tests.vehicle.tus_server import TusState, make_app
from vehicle.config.tree import load_config
from vehicle.sources.sequence_gaps import SequenceGaps
from vehicle.upload.queue import UploadQueue

CMD = [sys.executable, "-m", "vehicle.cli"]
ROOT = Path(__file__).resolve().parents[2]
KITTI = ROOT / "tests" / "fixtures" / "real" / "kitti" / "image_2" / "000000.png"
NS = 1_000_000_000
CAMERA_HZ, STATE_HZ, GOP = 10, 50, 10
REAL_BEFORE, NOISE, REAL_AFTER = 20, 10, 25      # camera frames: 2 s real, 1 s noise, 2.5 s real
BRAKE_AT_S, STATE_S = 5.0, 5.8                   # a hard brake whose window is still open at SIGTERM
THRESHOLD = 0.3                                  # entropy: the KITTI frame scores ~0.07, noise ~0.55


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode_stream() -> list[tuple[bytes, bool]]:
    """H.265 access units (PyAV libx265): the KITTI frame, then pure noise, then KITTI again; a
    keyframe every ``GOP`` frames, so each part starts on one."""
    with av.open(str(KITTI)) as container:
        kitti = np.asarray(next(container.decode(video=0)).to_ndarray(format="bgr24"), dtype=np.uint8)
    enc = av.CodecContext.create("libx265", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = kitti.shape[1], kitti.shape[0], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, CAMERA_HZ), Fraction(CAMERA_HZ)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x265-params": f"repeat-headers=1:bframes=0:log-level=none:keyint={GOP}:min-keyint={GOP}"}
    rng = np.random.default_rng(7)
    out: list[tuple[bytes, bool]] = []
    for i in range(REAL_BEFORE + NOISE + REAL_AFTER):
        noisy = REAL_BEFORE <= i < REAL_BEFORE + NOISE
        img: np.ndarray[Any, np.dtype[np.uint8]] = rng.integers(0, 256, kitti.shape, dtype=np.uint8) if noisy else kitti
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]
    assert len(out) == REAL_BEFORE + NOISE + REAL_AFTER
    assert [k for _, k in out][REAL_BEFORE] and [k for _, k in out][REAL_BEFORE + NOISE]
    return out


class NotifyListener:
    """A real ``NOTIFY_SOCKET``: collects every field a process sends, like systemd would."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.fields: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.fields += self._sock.recv(4096).decode().split("\n")
            except TimeoutError:
                continue

    async def wait(self, field: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while field not in self.fields:
            assert time.monotonic() < deadline, f"no {field} on {self.path}: {self.fields}"
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class Proc:
    """One ``avdata-vehicle`` command as a real process with its own notify socket and log file."""

    def __init__(self, command: str, config: Path, tmp_path: Path) -> None:
        self.name = command
        self.notify = NotifyListener(tmp_path / f"{command}.notify")
        self.log = tmp_path / f"{command}.log"
        env = {**os.environ, "NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "2000000"}
        with open(self.log, "wb") as err:
            self.popen = subprocess.Popen([*CMD, command, "--config", str(config)], env=env, cwd=tmp_path,
                                          stdout=subprocess.DEVNULL, stderr=err)

    async def terminate(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        await self.notify.wait("STOPPING=1", 20)
        return await asyncio.to_thread(self.popen.wait, 30)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self.notify.close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a ``/metrics`` endpoint, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} is not exported"
    return samples[key]


def write_config(tmp_path: Path, sensor: str, extra: str) -> Path:
    path = tmp_path / "vehicle.toml"
    path.write_text(f"""
vehicle_id = "e2e-car"
data_dir = "{tmp_path / 'data'}"
model_version = "yolox_nano"
[sources]
endpoints = ["{sensor}"]
rcvhwm = 100000
{extra}
""")
    return path


def pipeline_config(tmp_path: Path, sensor: str, tus_url: str, ports: tuple[int, int, int], pub: str) -> Path:
    return write_config(tmp_path, sensor, f"""
[triggers.uncertain_scene]
kind = "uncertainty"
score_key = "uncertainty"
threshold = {THRESHOLD}
min_duration_s = 0.0
pre_s = 1.5
post_s = 1.5
cooldown_s = 60.0
priority = 40
[triggers.hard_brake]
kind = "hard_brake"
decel_mps2 = 4.0
min_duration_s = 0.2
pre_s = 0.5
post_s = 30.0
priority = 80
[uploader]
url = "{tus_url}"
token = "tok-e2e"
chunk_bytes = 262144
poll_s = 0.2
backoff_initial_s = 0.05
[metrics]
port = {ports[0]}
uploader_port = {ports[1]}
inference_port = {ports[2]}
[timesync.expected_hz]
"camera/front" = {float(CAMERA_HZ)}
vehicle_state = {float(STATE_HZ)}
[inference]
sub_endpoints = ["{sensor}"]
pub_endpoint = "{pub}"
max_rate_hz = 0.0
[inference.model]
provider = "cpu"
""")


async def publish_drive(sock: zmq.Socket[bytes], frames: list[tuple[bytes, bool]], t0_ns: int) -> None:
    """Camera at 10 Hz and vehicle state at 50 Hz, paced in real time (the model scores as they come)."""
    start = time.monotonic()
    per_frame = STATE_HZ // CAMERA_HZ
    for j in range(round(STATE_S * STATE_HZ)):
        await asyncio.sleep(max(0.0, start + j / STATE_HZ - time.monotonic()))
        t_ns = t0_ns + j * NS // STATE_HZ
        k = j // per_frame
        if j % per_frame == 0 and k < len(frames):
            payload, key = frames[k]
            sock.send_multipart(SensorMessage("camera/front", "cam_front", t_ns, 0, k, "h265", payload,
                                              key).to_frames())
        braking = BRAKE_AT_S <= j / STATE_HZ < BRAKE_AT_S + 0.5
        state = state_payload(-6.0 if braking else 0.0)
        sock.send_multipart(SensorMessage("vehicle_state", "can0", t_ns, 0, j, "vehicle_state_v1",
                                          state).to_frames())


@pytest.fixture
async def tus() -> AsyncIterator[tuple[TusState, str]]:
    state = TusState(tokens={"e2e-car": "tok-e2e"})
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield state, f"http://127.0.0.1:{runner.addresses[0][1]}/files/"
    await runner.cleanup()


async def test_record_infer_upload_as_three_processes(
        tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str], tus: tuple[TusState, str]) -> None:
    sock, sensor = xpub
    state, url = tus
    ports = (free_port(), free_port(), free_port())
    config = pipeline_config(tmp_path, sensor, url, ports, f"tcp://127.0.0.1:{free_port()}")
    procs = {name: Proc(name, config, tmp_path) for name in ("record", "infer", "upload")}
    try:
        frames = await asyncio.to_thread(encode_stream)  # while the processes start
        for p in procs.values():
            await p.notify.wait("READY=1")
            await p.notify.wait("WATCHDOG=1")
        subscriptions: set[bytes] = set()
        while len(subscriptions) < 2:  # the recorder (every topic) and the inference process (camera/)
            assert sock.poll(10_000), f"subscriptions so far: {subscriptions}"
            subscriptions.add(sock.recv())
        assert subscriptions == {b"\x01", b"\x01camera/"}
        await asyncio.sleep(0.5)  # the recorder's SUB reaches the inference PUB (it reconnects every 100 ms)
        t0_ns = time.time_ns()
        await publish_drive(sock, frames, t0_ns)
        for _ in range(200):
            if state.stored:
                break
            await asyncio.sleep(0.05)
        assert len(state.stored) == 1, "the uncertainty snapshot reached the cloud"
        await asyncio.sleep(1.2)  # each main loop refreshes queue_depth once a second
        rec, up, inf = [await asyncio.to_thread(scrape, port) for port in ports]

        # The recorder: per-topic counters, model scores received, triggers by kind, drops by stage.
        assert sample(rec, "avdata_vehicle_messages_received_total", topic="camera/front") == len(frames)
        assert sample(rec, "avdata_vehicle_messages_received_total",
                      topic="vehicle_state") == round(STATE_S * STATE_HZ)
        n_scores = sample(rec, "avdata_vehicle_messages_received_total", topic="model/scores")
        n_scored = sample(inf, "avdata_vehicle_inference_frames_scored_total", topic="camera/front")
        assert 10 <= n_scores <= n_scored <= len(frames)
        assert sample(rec, "avdata_vehicle_triggers_total", kind="uncertainty") == 1
        assert sample(rec, "avdata_vehicle_triggers_total", kind="hard_brake") == 1
        drops = {k: v for k, v in rec.items() if k[0] == "avdata_vehicle_drops_total"}
        assert drops == {}, "nothing dropped at any stage (the flood test below makes them count)"
        assert 0 < sample(rec, "avdata_vehicle_buffer_fill_ratio") < 0.1
        assert sample(rec, "avdata_vehicle_queue_depth", state="done") == 1
        # The uploader: bytes sent and the queue as it sees it.
        (stored,) = state.stored.values()
        assert sample(up, "avdata_vehicle_upload_bytes_sent_total") == len(stored)
        assert sample(up, "avdata_vehicle_uploads_total", result="delivered") == 1
        assert sample(up, "avdata_vehicle_queue_depth", state="done") == 1

        for name in ("upload", "infer", "record"):  # the uploader first, so the flushed snapshot stays queued
            assert await procs[name].terminate() == 0, procs[name].log.read_text()[-2000:]
    finally:
        for p in procs.values():
            p.kill()

    # The delivered snapshot holds the scores; the trigger fired on a noise frame, never on a real one.
    delivered = tmp_path / "delivered.mcap"
    delivered.write_bytes(stored)
    noise_ns = {t0_ns + k * NS // CAMERA_HZ for k in range(REAL_BEFORE, REAL_BEFORE + NOISE)}
    with SnapshotReader(delivered) as reader:
        (trigger,) = reader.manifest.triggers
        assert trigger.kind.value == "uncertainty" and trigger.t_ns in noise_ns
        assert trigger.scores["uncertainty"] >= THRESHOLD
        channel = reader.manifest.channel("model/scores")
        assert channel is not None and channel.count >= 5
        scores = [decode_scores(m.payload) for _, m in reader.messages(["model/scores"])]
        camera = reader.manifest.channel("camera/front")
        assert camera is not None and len(scores) == channel.count <= camera.count
    noisy = [s.uncertainty for s in scores if s.t_sensor_ns in noise_ns]
    real = [s.uncertainty for s in scores if s.t_sensor_ns not in noise_ns]
    assert noisy and real, "the window spans real frames before the noise and noise frames"
    assert min(noisy) >= THRESHOLD > max(real), (noisy, real)

    # SIGTERM flushed the open hard-brake window; the queue on disk still holds it for the next start.
    queue = UploadQueue(tmp_path / "data" / "queue.sqlite3", tmp_path / "data" / "snapshots", 1 << 30)
    try:
        entries = {e.state: e for e in queue.entries()}
        assert sorted(entries) == ["done", "pending"] and entries["pending"].priority == 80
        path = queue.path(entries["pending"])
        assert path.exists() and sha256_file(path) == entries["pending"].sha256
    finally:
        queue.close()
    with SnapshotReader(path) as reader:
        assert [t.kind.value for t in reader.manifest.triggers] == ["hard_brake"]
        vstate = reader.manifest.channel("vehicle_state")
        assert vstate is not None and vstate.count >= round(0.5 * STATE_HZ)
    assert list((tmp_path / "data" / "snapshots").glob("*.mcap")) == [path]


async def test_socket_high_water_mark_drops_show_as_sequence_gaps(tmp_path: Path) -> None:
    """Flood a recorder whose SUB holds 10 messages from a PUB that holds 10: ZeroMQ drops silently;
    every message is either received or counted as a ``socket`` drop, and the 1 MiB ring evicts."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, 10)
    pub.setsockopt(zmq.LINGER, 0)
    sensor = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
    port = free_port()
    config = write_config(tmp_path, sensor, f"[buffer]\nmax_bytes = 1048576\n[metrics]\nport = {port}\n")
    config.write_text(config.read_text().replace("rcvhwm = 100000", "rcvhwm = 10"))
    rec = Proc("record", config, tmp_path)
    n, payload = 20_000, bytes(4096)
    try:
        await rec.notify.wait("READY=1")
        assert pub.poll(10_000) and pub.recv() == b"\x01"

        def send(seq: int) -> None:
            pub.send_multipart(SensorMessage("flood/hwm", "flood", 1_000 * NS + seq * 1_000_000, 0, seq, "raw",
                                             payload).to_frames())

        for seq in range(n):
            send(seq)
        await asyncio.sleep(1.0)  # drained; the last message reveals any loss at the end of the burst
        send(n)
        await asyncio.sleep(0.5)
        got = await asyncio.to_thread(scrape, port)
        assert await rec.terminate() == 0
    finally:
        rec.kill()
        pub.close()
        ctx.term()
    received = sample(got, "avdata_vehicle_messages_received_total", topic="flood/hwm")
    dropped = sample(got, "avdata_vehicle_drops_total", stage="socket", reason="seq_gap")
    assert dropped > 0 and received + dropped == n + 1
    assert sample(got, "avdata_vehicle_drops_total", stage="ring", reason="bytes") >= received - 1024 * 1024 // 4096
    assert 0.9 < sample(got, "avdata_vehicle_buffer_fill_ratio") <= 1.0


def test_sequence_gaps_count_skipped_numbers_per_stream() -> None:
    gaps = SequenceGaps()

    def msg(topic: str, seq: int, sensor: str = "s") -> SensorMessage:
        return SensorMessage(topic, sensor, seq, 0, seq, "raw", b"")

    assert [gaps.observe(msg("imu", s)) for s in (5, 6, 9, 9, 10)] == [0, 0, 2, 0, 0]
    assert gaps.observe(msg("imu", 0)) == 0, "a publisher restart is not a loss"
    assert gaps.observe(msg("imu", 3)) == 2
    assert gaps.observe(msg("imu", 7, sensor="other")) == 0, "each sensor on a topic has its own numbers"
    assert gaps.observe(msg("gnss", 4)) == 0


UNITS = ROOT / "systemd"
VEHICLE_UNITS = ("avdata-vehicle.service", "avdata-vehicle-recorder.service",
                 "avdata-vehicle-uploader.service", "avdata-vehicle-inference.service")


def unit(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_vehicle_units_agree_with_each_other() -> None:
    units = {name: unit(name) for name in VEHICLE_UNITS}
    commands = {name: u["ExecStart"][0] for name, u in units.items()}
    configs = {re.search(r"--config (\S+)", c).group(1) for c in commands.values()}  # type: ignore[union-attr]
    assert configs == {"/etc/avdata/vehicle.toml"}, "every unit reads the same configuration"
    assert [c.split()[2] for c in commands.values()] == ["run", "record", "upload", "infer"]
    for name, u in units.items():
        assert u["Type"] == ["notify"] and u["Restart"] == ["on-failure"], name
        assert u["RestartPreventExitStatus"] == ["2"], f"{name}: a bad configuration is not restarted in a loop"
        assert float(u["WatchdogSec"][0]) >= 3, f"{name}: the loops ping at least every second"
        assert u["User"] == ["avdata"] and u["WorkingDirectory"] == ["/var/lib/avdata"], name
    inference = units["avdata-vehicle-inference.service"]
    assert int(inference["Nice"][0]) > int(units["avdata-vehicle-recorder.service"]["Nice"][0])
    assert inference["MemoryMax"] and inference["CPUQuota"], "the detector is bounded on a car computer"
    for recorder in ("avdata-vehicle.service", "avdata-vehicle-recorder.service"):
        assert "avdata-vehicle-inference.service" in " ".join(units[recorder]["Wants"])
        assert "avdata-vehicle-inference.service" not in " ".join(units[recorder].get("After", []))
    assert "avdata-vehicle-recorder.service" in inference["After"][0]
    assert set(units["avdata-vehicle.service"]["Conflicts"][0].split()) == {
        "avdata-vehicle-recorder.service", "avdata-vehicle-uploader.service"}


def test_vehicle_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    require(None if shutil.which("systemd-analyze") else "systemd-analyze is not installed")
    for name in VEHICLE_UNITS:
        shutil.copy(UNITS / name, tmp_path / name)
    out = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in VEHICLE_UNITS)],
                         capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too; it only warns, on stderr.
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_example_config_matches_what_the_units_run() -> None:
    cfg = load_config(ROOT / "config" / "vehicle.example.toml")
    assert cfg.inference is not None and cfg.inference.pub_endpoint in cfg.recorder_endpoints
    quota = int(unit("avdata-vehicle-inference.service")["CPUQuota"][0].rstrip("%"))
    assert cfg.inference.model.intra_op_threads <= quota // 100, "the session's threads fit the CPU quota"
