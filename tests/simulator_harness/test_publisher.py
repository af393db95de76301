"""The drive publisher over real ZeroMQ sockets, in-process and as the ``avdata-sim`` CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from shared.messages import SensorMessage, from_frames
from simulator_harness import cli
from simulator_harness.drive import DriveParams
from simulator_harness.errors import NoSubscriber
from simulator_harness.publisher import PublishConfig, Publisher
from simulator_harness.sensors import demo_rig

RATES_HZ = {"camera/front": 30.0, "lidar/top": 10.0, "imu": 200.0, "vehicle_state": 50.0, "gnss": 10.0}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """``cli.main`` sets up JSON logging on the root logger; give the next test its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _subscriber(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    sub: zmq.Socket[bytes] = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    sub.subscribe(b"")
    return sub


def _receive_until(sub: zmq.Socket[bytes], done: threading.Event | None, quiet_s: float = 0.5,
                   limit_s: float = 30.0) -> list[SensorMessage]:
    """Everything the SUB gets until ``done`` is set (or the peer is gone) and the line is quiet."""
    got: list[SensorMessage] = []
    last, start = time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit_s:
        if sub.poll(50):
            got.append(from_frames(sub.recv_multipart()))
            last = time.monotonic()
        elif (done is None or done.is_set()) and time.monotonic() - last > quiet_s:
            break
    return got


def _read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_logged_message_arrives_in_order_at_its_rate(tmp_path: Path) -> None:
    log_path = tmp_path / "published.jsonl"
    ctx = zmq.Context()
    config = PublishConfig("tcp://127.0.0.1:*", duration_s=2.0, log_path=log_path, wait_subscriber_s=10)
    publisher = Publisher(demo_rig(DriveParams(brake_at_s=1.0)), config, context=ctx)
    sub = _subscriber(ctx, publisher.endpoint)
    done = threading.Event()
    result = {}

    def publish() -> None:
        try:
            result["summary"] = publisher.run()
        finally:
            publisher.close()
            done.set()

    thread = threading.Thread(target=publish)
    thread.start()
    received = _receive_until(sub, done)
    thread.join(10)
    sub.close()
    ctx.term()

    logged = _read_log(log_path)
    summary = result["summary"]
    assert not summary.stopped_early
    assert summary.messages == len(logged) == len(received)
    assert [(m.topic, m.seq, m.t_sensor_ns, m.keyframe, len(m.payload)) for m in received] == [
        (r["topic"], r["seq"], r["t_sensor_ns"], r["keyframe"], r["bytes"]) for r in logged]

    by_topic: dict[str, list[SensorMessage]] = defaultdict(list)
    for m in received:
        by_topic[m.topic].append(m)
    assert set(by_topic) == set(RATES_HZ)
    for topic, msgs in by_topic.items():
        rate = RATES_HZ[topic]
        assert len(msgs) == int(2.0 * rate), topic
        assert [m.seq for m in msgs] == list(range(len(msgs))), topic
        stamps = [m.t_sensor_ns for m in msgs]
        assert stamps == sorted(stamps), topic
        measured_hz = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9)
        assert measured_hz == pytest.approx(rate, rel=0.10), topic
    camera = by_topic["camera/front"]
    assert [m.seq for m in camera if m.keyframe] == [0, 30]
    assert all(m.encoding == "h265" for m in camera)
    assert {m.sensor_id for m in by_topic["imu"]} == {"imu0"}
    assert summary.topics["camera/front"].keyframes == 2
    assert summary.topics["lidar/top"].bytes == sum(len(m.payload) for m in by_topic["lidar/top"])
    assert "camera/front" in summary.format() and "% of one core" in summary.format()


def test_no_subscriber_is_a_clear_error_after_the_wait() -> None:
    config = PublishConfig("tcp://127.0.0.1:*", duration_s=1.0, wait_subscriber_s=0.3)
    with Publisher(demo_rig(DriveParams(), width_px=64, height_px=48), config) as publisher:
        start = time.monotonic()
        with pytest.raises(NoSubscriber, match=r"no subscriber on tcp://127\.0\.0\.1:\d+ within 0\.3 s"):
            publisher.run()
        assert 0.25 < time.monotonic() - start < 2.0


def test_request_stop_ends_the_run_early_and_the_log_matches(tmp_path: Path) -> None:
    log_path = tmp_path / "published.jsonl"
    config = PublishConfig("tcp://127.0.0.1:*", duration_s=30.0, log_path=log_path, wait_subscriber_s=0)
    with Publisher(demo_rig(DriveParams(), width_px=64, height_px=48), config) as publisher:
        timer = threading.Timer(0.5, publisher.request_stop)
        timer.start()
        start = time.monotonic()
        summary = publisher.run()
        assert time.monotonic() - start < 1.5
    assert summary.stopped_early
    assert 50 < summary.messages == len(_read_log(log_path))


def test_cli_help_explains_publish(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["publish", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--endpoint", "--duration-s", "--brake-at-s", "--log", "--seed", "--wait-subscriber-s",
                 "--width", "--height"):
        assert flag in text
    assert "exit code 3" in text


def test_cli_exit_codes_for_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["publish", "--endpoint", "tcp://127.0.0.1:*", "--width", "641"]) == cli.EXIT_USAGE
    assert "even" in capsys.readouterr().err
    assert cli.main(["publish", "--endpoint", "tcp://127.0.0.1:*", "--wait-subscriber-s", "0.2",
                     "--width", "64", "--height", "48"]) == cli.EXIT_NO_SUBSCRIBER
    assert cli.main(["publish", "--endpoint", "bogus://nowhere"]) == cli.EXIT_FAILED
    assert "cannot bind" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_the_cli_cleanly(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    log_path = tmp_path / "published.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator_harness.cli", "publish", "--endpoint", endpoint, "--duration-s",
         "60", "--log", str(log_path), "--width", "160", "--height", "96"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    ctx = zmq.Context()
    sub = _subscriber(ctx, endpoint)
    try:
        first: list[SensorMessage] = []
        deadline = time.monotonic() + 20
        while len(first) < 100 and time.monotonic() < deadline:
            if sub.poll(100):
                first.append(from_frames(sub.recv_multipart()))
        assert len(first) == 100, proc.communicate()[1] if proc.poll() is not None else "no messages"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        rest = _receive_until(sub, None, quiet_s=0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        ctx.term()
    assert proc.returncode == 0, err
    assert "stopped early" in out
    logged = _read_log(log_path)
    assert len(logged) == len(first) + len(rest)
    assert [(r["topic"], r["seq"]) for r in logged] == [(m.topic, m.seq) for m in first + rest]
