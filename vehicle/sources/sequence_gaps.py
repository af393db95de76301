"""Sequence gaps: messages lost between a publisher and the recorder, told by the publisher's numbers.

ZeroMQ drops silently at a high-water mark; the only trace is a jump in the publisher's ``seq`` of
a stream ``(topic, sensor_id)``. Pure: no sockets.

For each good message :meth:`SequenceGaps.observe_loss` says how many of its stream's messages just
before it are already accounted for, so that no later stage counts them again (see
:mod:`vehicle.metrics` for the rule): ``socket`` ones never arrived (a jump forward in ``seq``),
``rejected`` ones arrived but the decoder refused them (already counted as ``decode`` drops).
A refused message whose header still names its stream and ``seq`` (:func:`peek_stream`) advances
its stream like a good one, so it is not also a gap. One whose ``seq`` is unreadable leaves a
credit on its topic; the topic's next good message spends it on its gap, if it has one, and the
credit lapses either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgpack

from shared.messages import SCHEMA, SensorMessage

#: Largest header :func:`peek_stream` looks into (the decoder's own limit).
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamLoss:
    """Messages of one stream missing just before a received message, by who already counted them."""

    socket: int = 0
    rejected: int = 0

    @property
    def explained(self) -> int:
        """Missing messages that a time gap on the same topic must not count again."""
        return self.socket + self.rejected


NO_LOSS = StreamLoss()


class SequenceGaps:
    """Per-stream bookkeeping of the publisher's sequence numbers.

    A jump forward counts the skipped numbers; a step back (the publisher restarted) starts the
    stream afresh; a repeat is left to time sync's duplicate check. Messages lost at the end of a
    burst are counted when the stream's next message arrives.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._rejected: dict[tuple[str, str], int] = {}
        self._credit: dict[str, int] = {}

    def _advance(self, key: tuple[str, str], seq: int) -> tuple[bool, int]:
        """``(new, skipped)``: whether ``seq`` differs from the stream's last, and how many it skips."""
        last = self._last.get(key)
        if last is not None and seq == last:
            return False, 0
        self._last[key] = seq
        return True, 0 if last is None or seq < last else seq - last - 1

    def observe_loss(self, msg: SensorMessage) -> StreamLoss:
        """Account for one good message; what of its stream is missing just before it."""
        key = (msg.topic, msg.sensor_id)
        new, skipped = self._advance(key, msg.seq)
        rejected = self._rejected.pop(key, 0) if self._rejected else 0
        if not new and rejected:
            rejected -= 1  # the good copy of a refused message arrived after all
        if self._credit:
            absorbed = min(self._credit.pop(msg.topic, 0), skipped)
            skipped, rejected = skipped - absorbed, rejected + absorbed
        if not (skipped or rejected):
            return NO_LOSS
        return StreamLoss(skipped, rejected)

    def observe(self, msg: SensorMessage) -> int:
        """How many messages of ``msg``'s stream were lost on the socket just before it."""
        return self.observe_loss(msg).socket

    def reject(self, topic: str, sensor_id: str, seq: int) -> int:
        """Account for a refused message whose header names its stream; returns how many of the
        stream were lost on the socket just before it."""
        key = (topic, sensor_id)
        new, skipped = self._advance(key, seq)
        if new:
            self._rejected[key] = self._rejected.get(key, 0) + 1
        return skipped

    def reject_unknown(self, topic: str) -> None:
        """Account for a refused message of ``topic`` whose stream or ``seq`` cannot be read."""
        self._credit[topic] = self._credit.get(topic, 0) + 1


def peek_stream(frames: Sequence[bytes | memoryview]) -> tuple[str | None, str | None, int | None]:
    """Best effort ``(topic, sensor_id, seq)`` of a message the decoder refused; ``None`` where unreadable."""
    if not frames:
        return None, None, None
    try:
        topic = bytes(frames[0]).decode()
    except UnicodeDecodeError:
        return None, None, None
    if len(frames) < 2 or len(frames[1]) > MAX_HEADER_BYTES:
        return topic, None, None
    try:
        envelope = msgpack.unpackb(bytes(frames[1]), raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return topic, None, None
    if not isinstance(envelope, dict) or envelope.get("schema") != SCHEMA:
        return topic, None, None
    body = envelope.get("body")
    if isinstance(body, dict):
        sensor_id, seq = body.get("sensor_id"), body.get("seq")
        if isinstance(sensor_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
            return topic, sensor_id, seq
    return topic, None, None
