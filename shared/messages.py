"""The sensor message envelope: what every sensor driver publishes over ZeroMQ.

On the wire a message is three ZeroMQ frames ``[topic, header, payload]``: the topic lets SUB
sockets filter without decoding, the header is a small versioned msgpack envelope, and the payload
travels as its own frame so large camera or LiDAR payloads are never re-encoded or copied.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any

from shared import wire
from shared.errors import MalformedMessage, OversizedMessage, TruncatedMessage

SCHEMA = "avdata.SensorMessage"
VERSION = 1
VERSIONS = frozenset({1})

#: Stored-record layouts :func:`from_record` reads. Version 1 is one msgpack envelope holding the
#: payload; version 2 is ``[0xC1][u32 LE header_len][header envelope][raw payload]``, so writing it
#: never copies the payload into an envelope. 0xC1 is the one byte msgpack never uses, so a version 2
#: record cannot be mistaken for a version 1 envelope (which always starts with a msgpack map).
RECORD_VERSION = 2
RECORD_VERSIONS = frozenset({1, 2})
RECORD_MAGIC = 0xC1
_RECORD_PREFIX = struct.Struct("<BI")
_MAX_RECORD_HEADER = 64 * 1024

#: Payload encodings this project produces (a receiver stores unknown ones opaquely).
ENCODINGS = frozenset({"h265", "h264", "lidar_points_v1", "radar_v1", "imu_v1", "gnss_v1",
                       "vehicle_state_v1", "pose_v1", "calibration_v1", "model_scores_v1"})


@dataclass(frozen=True, slots=True)
class SensorMessage:
    """One sample from one sensor.

    Attributes:
        topic: ZeroMQ topic, also the MCAP channel name (``camera/front``, ``imu``...).
        sensor_id: the physical sensor's identifier.
        t_sensor_ns: capture time on the sensor's own clock, integer nanoseconds.
        t_recv_ns: receive time on the vehicle clock (ns); 0 until a receiver stamps it.
        seq: per-topic sequence number assigned by the publisher, starting at 0.
        encoding: payload encoding, e.g. ``h265`` or ``imu_v1``.
        payload: the encoded sample (bytes, or a zero-copy ``memoryview`` of a ZeroMQ frame).
        keyframe: for video, whether the payload is a keyframe carrying its parameter sets.
    """

    topic: str
    sensor_id: str
    t_sensor_ns: int
    t_recv_ns: int
    seq: int
    encoding: str
    payload: bytes | memoryview
    keyframe: bool = False

    def header_body(self) -> dict[str, Any]:
        return {
            "sensor_id": self.sensor_id,
            "t_sensor_ns": self.t_sensor_ns,
            "t_recv_ns": self.t_recv_ns,
            "seq": self.seq,
            "encoding": self.encoding,
            "keyframe": self.keyframe,
        }

    def to_frames(self) -> list[bytes | memoryview]:
        """The ZeroMQ multipart frames ``[topic, header, payload]``."""
        header = wire.pack(SCHEMA, VERSION, self.header_body())
        return [self.topic.encode(), header, self.payload]

    def stamped(self, t_recv_ns: int) -> SensorMessage:
        """A copy with the receive time set (the payload is shared, not copied)."""
        return replace(self, t_recv_ns=t_recv_ns)

    def record_head(self) -> bytes:
        """Everything of the version 2 record before the payload: the record is ``head + payload``.

        Writers that can emit several buffers (an MCAP chunk, ``writev``) store the payload as it is.
        """
        body = self.header_body()
        body["topic"] = self.topic
        header = wire.pack(SCHEMA, RECORD_VERSION, body)
        return _RECORD_PREFIX.pack(RECORD_MAGIC, len(header)) + header

    def to_record(self) -> bytes:
        """Self-contained encoding (record version 2: header envelope, then the raw payload)."""
        return b"".join((self.record_head(), self.payload))

    def to_record_v1(self) -> bytes:
        """The version 1 record (one envelope that also holds the payload), as older builds wrote."""
        body = self.header_body()
        body["topic"] = self.topic
        body["payload"] = bytes(self.payload)
        return wire.pack(SCHEMA, 1, body)


def _from_body(topic: str, body: dict[str, Any], payload: bytes | memoryview) -> SensorMessage:
    f = wire.field
    return SensorMessage(
        topic=topic,
        sensor_id=f(body, "sensor_id", str, SCHEMA),
        t_sensor_ns=f(body, "t_sensor_ns", int, SCHEMA),
        t_recv_ns=f(body, "t_recv_ns", int, SCHEMA),
        seq=f(body, "seq", int, SCHEMA),
        encoding=f(body, "encoding", str, SCHEMA),
        payload=payload,
        keyframe=bool(body.get("keyframe", False)),
    )


def from_frames(
    frames: list[bytes] | list[memoryview] | list[Any], max_payload_bytes: int = wire.DEFAULT_MAX_BYTES,
    t_recv_ns: int | None = None,
) -> SensorMessage:
    """Decode ZeroMQ frames; raises a :class:`shared.errors.ContractError` subclass.

    ``t_recv_ns``, when given, stamps the receive time in the same construction (the hot path of a
    receiver) instead of keeping the publisher's value.
    """
    if len(frames) < 3:
        raise TruncatedMessage(f"sensor message has {len(frames)} frame(s), expected 3")
    if len(frames) > 3:
        raise MalformedMessage(f"sensor message has {len(frames)} frames, expected 3")
    topic_frame, header, payload = (memoryview(fr) if not isinstance(fr, memoryview) else fr
                                    for fr in frames)
    try:
        topic = bytes(topic_frame).decode()
    except UnicodeDecodeError as exc:
        raise MalformedMessage("sensor message topic is not UTF-8") from exc
    if len(payload) > max_payload_bytes:
        raise OversizedMessage(
            f"{topic}: payload of {len(payload)} bytes exceeds the limit of {max_payload_bytes}"
        )
    _, body = wire.unpack(bytes(header), SCHEMA, VERSIONS, max_bytes=64 * 1024)
    if t_recv_ns is not None:
        body["t_recv_ns"] = t_recv_ns
    return _from_body(topic, body, payload)


def from_record(data: bytes) -> SensorMessage:
    """Decode a stored record of either version; the payload of a version 2 record is a view of ``data``."""
    if data[:1] != bytes((RECORD_MAGIC,)):
        _, body = wire.unpack(data, SCHEMA, frozenset({1}))
        topic = wire.field(body, "topic", str, SCHEMA)
        payload: bytes | memoryview = wire.field(body, "payload", bytes, SCHEMA)
        return _from_body(topic, body, payload)
    if len(data) < _RECORD_PREFIX.size:
        raise TruncatedMessage(f"sensor record of {len(data)} bytes ends inside its prefix")
    _, header_len = _RECORD_PREFIX.unpack_from(data)
    end = _RECORD_PREFIX.size + header_len
    if header_len > _MAX_RECORD_HEADER:
        raise MalformedMessage(f"sensor record header of {header_len} bytes exceeds {_MAX_RECORD_HEADER}")
    if end > len(data):
        raise TruncatedMessage(f"sensor record header of {header_len} bytes runs past the record's end")
    view = memoryview(data)
    _, body = wire.unpack(bytes(view[_RECORD_PREFIX.size:end]), SCHEMA, frozenset({RECORD_VERSION}))
    return _from_body(wire.field(body, "topic", str, SCHEMA), body, view[end:])
