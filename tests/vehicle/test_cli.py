"""``avdata-vehicle`` as a real process: READY/STOPPING over a real NOTIFY_SOCKET, SIGTERM flush,
recording and uploading to a real tus server, ``queue ls``, and bad configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from aiohttp import web

from shared.snapshot import SnapshotReader
from tests.vehicle.conftest import NS, build_drive, wait_subscriber
from tests.vehicle.tus_server import TusState, make_app
from vehicle.cli import main

CMD = [sys.executable, "-m", "vehicle.cli"]


def write_config(tmp_path: Path, endpoint: str, url: str = "http://127.0.0.1:9/files/",
                 extra: str = "") -> Path:
    path = tmp_path / "vehicle.toml"
    path.write_text(f"""
vehicle_id = "cli-car"
data_dir = "{tmp_path / 'data'}"
[sources]
endpoints = ["{endpoint}"]
[triggers.hard_brake]
kind = "hard_brake"
decel_mps2 = 4.0
min_duration_s = 0.2
pre_s = 1.0
post_s = 1.0
priority = 80
[uploader]
url = "{url}"
token = "tok-cli"
chunk_bytes = 65536
backoff_initial_s = 0.05
{extra}
""")
    return path


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    yield sock, path
    sock.close()


def wait_for(sock: socket.socket, field: str) -> list[str]:
    seen: list[str] = []
    while field not in seen:
        seen += sock.recv(4096).decode().split("\n")
    return seen


def start(args: list[str], notify: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "400000"}
    return subprocess.Popen(CMD + args, env=env, cwd=tmp_path, stderr=subprocess.PIPE)


def test_record_flushes_the_open_window_on_sigterm(
        tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str], notify_socket: tuple[socket.socket, str],
        h265_clip: list[tuple[bytes, bool]]) -> None:
    sock, endpoint = xpub
    nsock, npath = notify_socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = write_config(tmp_path, endpoint, extra=f"[metrics]\nport = {port}")
    proc = start(["record", "--config", str(cfg)], npath, tmp_path)
    try:
        assert "READY=1" in wait_for(nsock, "READY=1")
        assert "WATCHDOG=1" in wait_for(nsock, "WATCHDOG=1")
        wait_subscriber(sock)
        drive = build_drive(1_700_000_000 * NS, 2.6, h265_clip, brake_at_s=2.0)  # window still open
        for msg in drive:
            sock.send_multipart(msg.to_frames())
        time.sleep(1.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        n_imu = sum(1 for m in drive if m.topic == "imu")
        assert f'avdata_vehicle_messages_received_total{{topic="imu"}} {float(n_imu)}' in text
        assert 'avdata_vehicle_triggers_total{kind="hard_brake"} 1.0' in text
        proc.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in wait_for(nsock, "STOPPING=1")
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
    (path,) = (tmp_path / "data" / "snapshots").glob("*.mcap")
    with SnapshotReader(path) as reader:
        counts = {c.topic: c.count for c in reader.manifest.channels}
    start_ns = 1_700_000_000 * NS + round(1.2 * NS)
    assert counts["imu"] == sum(1 for m in drive if m.topic == "imu" and m.t_sensor_ns >= start_ns)
    assert '"msg": "snapshot written"' in stderr
    out = subprocess.run([*CMD, "queue", "ls", "--json", "--config", str(tmp_path / "vehicle.toml")],
                         capture_output=True, check=True, cwd=tmp_path)
    (entry,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (entry["state"], entry["file_name"], entry["priority"]) == ("pending", path.name, 80)


async def test_run_records_and_uploads_to_a_tus_server(
        tmp_path: Path, xpub: tuple[zmq.Socket[bytes], str], h265_clip: list[tuple[bytes, bool]]) -> None:
    state = TusState(tokens={"cli-car": "tok-cli"})
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/files/"
    sock, endpoint = xpub
    cfg = write_config(tmp_path, endpoint, url)
    proc = await asyncio.create_subprocess_exec(*CMD, "run", "--config", str(cfg), cwd=tmp_path,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.poll(0):
                break
            await asyncio.sleep(0.05)
        wait_subscriber(sock)
        for msg in build_drive(1_700_000_000 * NS, 4.0, h265_clip, brake_at_s=2.0):
            sock.send_multipart(msg.to_frames())
        for _ in range(200):
            if state.stored:
                break
            await asyncio.sleep(0.05)
        assert len(state.stored) == 1, "the snapshot reached the cloud"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    assert list((tmp_path / "data" / "snapshots").glob("*.mcap")) == [], "delivered files are deleted"


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1", extra="bogus_key = 1")
    assert main(["record", "--config", str(cfg)]) == 2
    assert "uploader.bogus_key" in capsys.readouterr().err


def test_upload_needs_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1")
    cfg.write_text(cfg.read_text().replace('token = "tok-cli"', ""))
    assert main(["upload", "--config", str(cfg)]) == 2
    assert "token is required" in capsys.readouterr().err


def test_infer_needs_an_inference_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1")
    assert main(["infer", "--config", str(cfg)]) == 2
    assert "no [inference] table" in capsys.readouterr().err


def test_infer_names_a_bad_inference_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1")
    cfg.write_text(cfg.read_text() + '\n[inference]\nsub_endpoints = ["tcp://127.0.0.1:1"]\nmax_rate_hz = "fast"\n')
    assert main(["infer", "--config", str(cfg)]) == 2
    assert "inference.max_rate_hz: expected a number" in capsys.readouterr().err


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process is already listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(("command", "key"), [("record", "port"), ("upload", "uploader_port")])
def test_a_taken_metrics_port_is_one_line_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], taken_port: int, command: str, key: str) -> None:
    """Exit 1, not 2: the configuration is valid and a restart may find the port free (the unit files
    restart on 1 and not on 2)."""
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1", extra=f"[metrics]\n{key} = {taken_port}\n")
    assert main([command, "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"127.0.0.1:{taken_port}" in err and f"[metrics] {key}" in err, err
    assert not (tmp_path / "data" / "queue.sqlite3").exists(), "the port is bound before anything else starts"


def test_infer_with_a_taken_metrics_port_names_the_key(tmp_path: Path, taken_port: int) -> None:
    cfg = write_config(tmp_path, "tcp://127.0.0.1:1", extra=f"[metrics]\ninference_port = {taken_port}\n")
    cfg.write_text(cfg.read_text() + '\n[inference]\nsub_endpoints = ["tcp://127.0.0.1:1"]\n')
    out = subprocess.run([*CMD, "infer", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    assert f"127.0.0.1:{taken_port} ([metrics] inference_port)" in out.stderr.strip().splitlines()[-1]
