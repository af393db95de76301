"""Sequence-gap accounting without sockets: refused messages keep their place in their stream."""

from __future__ import annotations

import msgpack

from shared.messages import SensorMessage
from vehicle.sources.sequence_gaps import SequenceGaps, StreamLoss, peek_stream


def msg(seq: int, topic: str = "imu", sensor: str = "s") -> SensorMessage:
    return SensorMessage(topic, sensor, seq, 0, seq, "raw", b"")


def test_a_refused_message_with_a_readable_header_is_not_a_gap() -> None:
    gaps = SequenceGaps()
    assert gaps.observe_loss(msg(0)) == StreamLoss()
    assert gaps.reject("imu", "s", 1) == 0
    assert gaps.observe_loss(msg(2)) == StreamLoss(socket=0, rejected=1)
    assert gaps.reject("imu", "s", 5) == 2, "a socket loss just before a refused message still counts"
    assert gaps.observe_loss(msg(7)) == StreamLoss(socket=1, rejected=1)
    assert gaps.observe_loss(msg(8)) == StreamLoss()


def test_a_refused_message_whose_good_copy_arrives_is_not_missing() -> None:
    gaps = SequenceGaps()
    gaps.observe_loss(msg(0))
    gaps.reject("imu", "s", 1)
    assert gaps.observe_loss(msg(1)) == StreamLoss()


def test_an_unreadable_refusal_excuses_one_message_of_the_next_gap_on_its_topic() -> None:
    gaps = SequenceGaps()
    gaps.observe_loss(msg(0))
    gaps.reject_unknown("imu")
    assert gaps.observe_loss(msg(4)) == StreamLoss(socket=2, rejected=1)
    gaps.reject_unknown("imu")
    assert gaps.observe_loss(msg(5)) == StreamLoss(), "no gap: the message was not part of the stream"
    assert gaps.observe_loss(msg(7)) == StreamLoss(socket=1), "the unused credit lapsed"
    gaps.reject_unknown("gnss")
    assert gaps.observe_loss(msg(9)) == StreamLoss(socket=1), "a credit belongs to its own topic"


def test_peek_stream_reads_what_it_can() -> None:
    good = SensorMessage("imu", "imu0", 1, 0, 42, "imu_v1", b"x")
    topic, header, _ = good.to_frames()
    assert isinstance(topic, bytes) and isinstance(header, bytes)
    assert peek_stream([topic, header]) == ("imu", "imu0", 42)
    assert peek_stream([memoryview(topic), memoryview(header), b"p"]) == ("imu", "imu0", 42)
    assert peek_stream([topic, header[:-3], b"p"]) == ("imu", None, None)
    assert peek_stream([topic, msgpack.packb({"schema": "other", "v": 1, "body": {"seq": 1}}), b""]) \
        == ("imu", None, None)
    assert peek_stream([topic, msgpack.packb({"schema": "avdata.SensorMessage", "v": 9,
                                              "body": {"sensor_id": "a", "seq": True}}), b""]) == ("imu", None, None)
    assert peek_stream([b"\xff\xfe", header, b""]) == (None, None, None)
    assert peek_stream([]) == (None, None, None)
