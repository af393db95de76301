"""Bad frames on a real socket are counted by reason and the stream goes on."""

from __future__ import annotations

import time

import msgpack
import zmq

from shared import wire
from shared.messages import SCHEMA, SensorMessage
from tests.vehicle.conftest import wait_subscriber
from vehicle.metrics import VehicleMetrics
from vehicle.sources.receiver import Receiver


def test_bad_frames_are_counted_and_good_ones_keep_flowing(xpub: tuple[zmq.Socket[bytes], str]) -> None:
    sock, endpoint = xpub
    metrics = VehicleMetrics()
    rx = Receiver((endpoint,), metrics)
    wait_subscriber(sock)
    good = SensorMessage("imu", "imu0", 123, 0, 7, "imu_v1", b"x" * 100)
    header = good.to_frames()[1]
    assert isinstance(header, bytes)
    bad = [
        [b"imu", header],                                              # truncated: 2 frames
        [b"imu", header[:-3], b"p"],                                   # truncated header
        [b"imu", msgpack.packb([1, 2]), b"p"],                         # malformed: not a map
        [b"imu", wire.pack(SCHEMA, 99, good.header_body()), b"p"],     # unknown version
        [b"imu", wire.pack(SCHEMA, 1, {"sensor_id": "imu0"}), b"p"],   # malformed: missing fields
        [b"\xff\xfe", header, b"p"],                                   # topic not UTF-8
    ]
    for frames in bad:
        sock.send_multipart(frames)
        sock.send_multipart(good.to_frames())
    got: list[SensorMessage] = []
    deadline = time.monotonic() + 5
    while len(got) < len(bad) and time.monotonic() < deadline:
        got += rx.receive(100)
    assert len(got) == len(bad)
    assert all(m.seq == 7 and bytes(m.payload) == b"x" * 100 and m.t_recv_ns > 0 for m in got)
    assert isinstance(got[0].payload, memoryview), "payloads are zero-copy views of the frames"
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "truncated"}) == 2
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "malformed"}) == 3
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "unknown_version"}) == 1
    rx.close()


def test_oversized_payload_is_dropped(xpub: tuple[zmq.Socket[bytes], str]) -> None:
    sock, endpoint = xpub
    metrics = VehicleMetrics()
    rx = Receiver((endpoint,), metrics, max_payload_bytes=1000)
    wait_subscriber(sock)
    sock.send_multipart(SensorMessage("lidar/top", "l", 1, 0, 0, "lidar_points_v1", b"\0" * 2000).to_frames())
    sock.send_multipart(SensorMessage("lidar/top", "l", 2, 0, 1, "lidar_points_v1", b"\0" * 20).to_frames())
    got: list[SensorMessage] = []
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        got += rx.receive(100)
    assert [m.seq for m in got] == [1]
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "oversized"}) == 1
    rx.close()


def _drain(rx: Receiver, n: int) -> list[tuple[SensorMessage, int]]:
    got: list[tuple[SensorMessage, int]] = []
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        got += rx.receive_accounted(100)
    return got


def test_sequence_gaps_are_counted_as_socket_drops(xpub: tuple[zmq.Socket[bytes], str]) -> None:
    """Numbers the publisher skipped (what a ZeroMQ high-water mark leaves) count as socket drops,
    per stream, and each next message says how many of its stream were lost just before it."""
    sock, endpoint = xpub
    metrics = VehicleMetrics()
    rx = Receiver((endpoint,), metrics)
    wait_subscriber(sock)
    sent = [("imu", "a", s) for s in (0, 1, 4, 5)] + [("imu", "b", s) for s in (0, 3)] + [("gnss", "g", 7)]
    for topic, sensor, seq in sent:
        sock.send_multipart(SensorMessage(topic, sensor, seq, 0, seq, "raw", b"x").to_frames())
    got = _drain(rx, len(sent))
    assert [(m.sensor_id, m.seq, counted) for m, counted in got] == [
        ("a", 0, 0), ("a", 1, 0), ("a", 4, 2), ("a", 5, 0), ("b", 0, 0), ("b", 3, 2), ("g", 7, 0)]
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "socket", "reason": "seq_gap"}) == 4
    rx.close()


def test_a_refused_message_is_not_also_a_socket_gap(xpub: tuple[zmq.Socket[bytes], str]) -> None:
    sock, endpoint = xpub
    metrics = VehicleMetrics()
    rx = Receiver((endpoint,), metrics, max_payload_bytes=100)

    def frames(seq: int, size: int = 10) -> list[bytes | memoryview]:
        return SensorMessage("lidar/top", "l", seq, 0, seq, "raw", b"\0" * size).to_frames()

    wait_subscriber(sock)
    sock.send_multipart(frames(0))
    sock.send_multipart(frames(1, size=1000))                          # oversized: header readable
    sock.send_multipart(frames(2))
    sock.send_multipart([b"lidar/top", b"\xc1garbage", b"p"])          # seq 3, header unreadable
    sock.send_multipart(frames(4))
    sock.send_multipart(frames(6))                                     # seq 5 lost on the way
    got = _drain(rx, 4)
    assert [(m.seq, counted) for m, counted in got] == [(0, 0), (2, 1), (4, 1), (6, 1)]
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "oversized"}) == 1
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "decode", "reason": "malformed"}) == 1
    assert metrics.value("avdata_vehicle_drops_total", {"stage": "socket", "reason": "seq_gap"}) == 1
    rx.close()
