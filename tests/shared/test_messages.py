"""The sensor message envelope over ZeroMQ frames and in its stored (record) form."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from shared import messages, wire
from shared.errors import MalformedMessage, OversizedMessage, TruncatedMessage, UnknownVersion
from shared.messages import SensorMessage
from shared.payloads import (
    LIDAR_DTYPE,
    POSE_ENCODING,
    ImuSample,
    VehiclePose,
    VehicleState,
    decode_points,
    decode_small,
    encode_points,
    encode_small,
)


def _msg(payload: bytes = b"\x00\x01payload") -> SensorMessage:
    return SensorMessage(topic="camera/front", sensor_id="cam0", t_sensor_ns=1_700_000_000_123_456_789,
                         t_recv_ns=0, seq=42, encoding="h265", payload=payload, keyframe=True)


def test_frames_round_trip_through_a_real_zmq_pair() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        sent = _msg(b"x" * 100_000)
        a.send_multipart(sent.to_frames())
        frames = b.recv_multipart(copy=False)
        got = messages.from_frames([f.buffer for f in frames])
    finally:
        a.close(0)
        b.close(0)
    assert got.topic == sent.topic and got.seq == 42 and got.keyframe
    assert got.t_sensor_ns == sent.t_sensor_ns
    assert isinstance(got.payload, memoryview)  # zero-copy view of the ZeroMQ frame
    assert bytes(got.payload) == sent.payload


def test_record_round_trip_keeps_everything_including_receive_time() -> None:
    msg = _msg().stamped(1_700_000_000_200_000_000)
    back = messages.from_record(msg.to_record())
    assert back == msg
    assert back.t_recv_ns == 1_700_000_000_200_000_000


def test_too_few_frames_is_truncated_and_too_many_is_malformed() -> None:
    frames = _msg().to_frames()
    with pytest.raises(TruncatedMessage, match="2 frame"):
        messages.from_frames(frames[:2])
    with pytest.raises(MalformedMessage, match="4 frames"):
        messages.from_frames([*frames, b""])


def test_truncated_header_is_typed() -> None:
    topic, header, payload = _msg().to_frames()
    with pytest.raises(TruncatedMessage):
        messages.from_frames([topic, bytes(header)[:-3], payload])


def test_unknown_header_version_is_typed() -> None:
    topic, _, payload = _msg().to_frames()
    header = wire.pack(messages.SCHEMA, 99, _msg().header_body())
    with pytest.raises(UnknownVersion, match="version 99"):
        messages.from_frames([topic, header, payload])


def test_header_with_wrong_field_type_is_malformed() -> None:
    topic, _, payload = _msg().to_frames()
    body = _msg().header_body() | {"seq": "forty-two"}
    with pytest.raises(MalformedMessage, match="'seq'"):
        messages.from_frames([topic, wire.pack(messages.SCHEMA, 1, body), payload])


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(OversizedMessage, match="camera/front"):
        messages.from_frames(_msg(b"x" * 2000).to_frames(), max_payload_bytes=1000)


def test_lidar_points_are_zero_copy_and_round_trip() -> None:
    pts = np.zeros(1000, dtype=LIDAR_DTYPE)
    pts["x"] = np.arange(1000)
    pts["ring"] = 7
    raw = encode_points(pts, LIDAR_DTYPE)
    back = decode_points(raw, LIDAR_DTYPE)
    assert np.array_equal(back, pts)
    with pytest.raises(MalformedMessage, match="not a multiple"):
        decode_points(bytes(raw)[:-1], LIDAR_DTYPE)


def test_small_payloads_round_trip_and_reject_bad_fields() -> None:
    vs = VehicleState(1.0, 2.0, 0.1, 15.0, -6.0, 0.2, 0.01, True)
    assert decode_small(encode_small(vs), VehicleState) == vs
    imu = ImuSample((0.1, 0.2, 9.81), (0.0, 0.0, 0.05))
    assert decode_small(encode_small(imu), ImuSample) == imu
    bad = wire.pack(VehicleState.SCHEMA, 1, {"x_m": 1.0})
    with pytest.raises(MalformedMessage, match="missing field"):
        decode_small(bad, VehicleState)
    with pytest.raises(MalformedMessage, match="3 numbers"):
        decode_small(wire.pack(ImuSample.SCHEMA, 1, {"accel_mps2": [1, 2], "gyro_radps": [0, 0, 0]}),
                     ImuSample)


def test_vehicle_pose_round_trips_and_rejects_what_is_no_pose() -> None:
    pose = VehiclePose((5172.67, 2419.10, 66.93), (0.97037575, 0.0027177, -0.01430741, -0.24116138))
    assert decode_small(encode_small(pose), VehiclePose) == pose and POSE_ENCODING in messages.ENCODINGS
    body = {"position_m": [1.0, 2.0, 3.0], "rotation_wxyz": [1.0, 0.0, 0.0, 0.0]}
    assert decode_small(wire.pack(VehiclePose.SCHEMA, 1, body), VehiclePose).position_m == (1.0, 2.0, 3.0)
    for field, value, match in (("rotation_wxyz", [1.0, 0.0, 0.0], "must be 4 numbers"),
                                ("rotation_wxyz", [2.0, 0.0, 0.0, 0.0], "norm 2"),
                                ("rotation_wxyz", [0.0, 0.0, 0.0, 0.0], "norm 0"),
                                ("position_m", [1.0, float("nan"), 0.0], "NaN or infinite"),
                                ("position_m", [1.0, "2", 0.0], "numbers only"),
                                ("position_m", [True, 0.0, 0.0], "numbers only")):
        with pytest.raises(MalformedMessage, match=match):
            decode_small(wire.pack(VehiclePose.SCHEMA, 1, {**body, field: value}), VehiclePose)
    with pytest.raises(UnknownVersion):
        decode_small(wire.pack(VehiclePose.SCHEMA, 2, body), VehiclePose)
    with pytest.raises(MalformedMessage, match=r"expected a 'avdata\.VehiclePose' envelope"):
        decode_small(encode_small(VehicleState(1.0, 2.0, 0.1, 15.0, 0.0, 0.0, 0.0, False)), VehiclePose)
    with pytest.raises(MalformedMessage, match="unit quaternion"):
        VehiclePose((0.0, 0.0, 0.0), (0.5, 0.0, 0.0, 0.0))  # the sender cannot build one either
    # The planar state is untouched: a version-1 vehicle state written as before still decodes.
    old = wire.pack(VehicleState.SCHEMA, 1, {"x_m": 1.0, "y_m": 2.0, "yaw_rad": 0.1, "speed_mps": 15.0,
                                             "accel_mps2": 0.0, "lat_accel_mps2": 0.0, "steering_rad": 0.0,
                                             "autonomy_engaged": False})
    assert decode_small(old, VehicleState) == VehicleState(1.0, 2.0, 0.1, 15.0, 0.0, 0.0, 0.0, False)


def test_from_frames_stamps_the_receive_time_when_given() -> None:
    got = messages.from_frames(_msg().to_frames(), t_recv_ns=123)
    assert got.t_recv_ns == 123 and got.t_sensor_ns == _msg().t_sensor_ns
