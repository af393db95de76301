"""Shared fixtures for the vehicle tests: a real H.265 clip, a synthetic drive, configs, sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import zmq

from shared.messages import SensorMessage
from shared.payloads import LIDAR_DTYPE, ImuSample, VehicleState, encode_points, encode_small
from tests.helpers import encode_h265 as _encode_h265
from vehicle.config.tree import VehicleConfig, load_config

NS = 1_000_000_000


def encode_h265(n_frames: int, gop: int = 30, size: int = 64) -> list[tuple[bytes, bool]]:
    """Real H.265 access units (see tests.helpers.encode_h265) at 30 fps."""
    return _encode_h265(n_frames, gop=gop, size=size, fps=30, shade_step=3)


def decode_h265(payloads: list[bytes]) -> int:
    """How many frames a fresh decoder gets out of ``payloads``."""
    dec: Any = av.CodecContext.create("hevc", "r")
    n = 0
    for data in payloads:
        n += len(dec.decode(av.Packet(data)))
    return n + len(dec.decode(None))


@pytest.fixture(scope="session")
def h265_clip() -> list[tuple[bytes, bool]]:
    return encode_h265(150)


def state_payload(accel_mps2: float = 0.0, speed_mps: float = 15.0, lat_accel_mps2: float = 0.0,
                  engaged: bool = True) -> bytes:
    return encode_small(VehicleState(x_m=0.0, y_m=0.0, yaw_rad=0.0, speed_mps=speed_mps,
                                     accel_mps2=accel_mps2, lat_accel_mps2=lat_accel_mps2,
                                     steering_rad=0.0, autonomy_engaged=engaged))


def build_drive(t0_ns: int, duration_s: float, clip: list[tuple[bytes, bool]],
                brake_at_s: float = 2.0, brake_for_s: float = 0.6, lidar_points: int = 500
                ) -> list[SensorMessage]:
    """A drive at the demo rates (camera 30 Hz, lidar 10, imu 200, state 50), time-sorted."""
    msgs: list[SensorMessage] = []
    rng = np.random.default_rng(0)
    imu = encode_small(ImuSample((0.0, 0.0, 9.81), (0.0, 0.0, 0.0)))
    pts = np.zeros(lidar_points, dtype=LIDAR_DTYPE)
    pts["x"] = rng.normal(size=lidar_points)
    lidar = bytes(encode_points(pts, LIDAR_DTYPE))

    def add(topic: str, hz: float, enc: str, payload_at: Any) -> None:
        n = int(duration_s * hz)
        for k in range(n):
            t = t0_ns + round(k * NS / hz)
            payload, key = payload_at(k, (t - t0_ns) / NS)
            msgs.append(SensorMessage(topic, topic.replace("/", "_"), t, 0, k, enc, payload, key))

    add("camera/front", 30, "h265", lambda k, s: clip[k % len(clip)])
    add("lidar/top", 10, "lidar_points_v1", lambda k, s: (lidar, False))
    add("imu", 200, "imu_v1", lambda k, s: (imu, False))
    def vehicle_state(k: int, s: float) -> tuple[bytes, bool]:
        braking = brake_at_s <= s < brake_at_s + brake_for_s
        return state_payload(-6.0 if braking else 0.0), False

    add("vehicle_state", 50, "vehicle_state_v1", vehicle_state)
    return sorted(msgs, key=lambda m: (m.t_sensor_ns, m.topic))


@pytest.fixture
def xpub() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """A bound XPUB socket (the test plays the sensor driver) and its endpoint."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock: zmq.Socket[bytes] = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(linger=0)


def wait_subscriber(sock: zmq.Socket[bytes], timeout_s: float = 5.0) -> None:
    if not sock.poll(int(timeout_s * 1000)):
        raise AssertionError("no subscriber connected")
    assert sock.recv()[0] == 1


def make_config(tmp_path: Path, endpoint: str = "tcp://127.0.0.1:1", **extra: Any) -> VehicleConfig:
    data: dict[str, Any] = {
        "vehicle_id": "test-car", "data_dir": str(tmp_path / "vehicle"),
        "sources": {"endpoints": [endpoint], "rcvhwm": 1_000_000},
        "triggers": {"hard_brake": {"kind": "hard_brake", "decel_mps2": 4.0, "min_duration_s": 0.2,
                                    "pre_s": 1.0, "post_s": 1.0, "cooldown_s": 20.0, "priority": 80}},
        "uploader": {"url": "http://127.0.0.1:9/files/", "token": "secret"},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return load_config(None, data)


def now_ns() -> int:
    return time.time_ns()
