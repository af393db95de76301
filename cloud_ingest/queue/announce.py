"""The segment announcement: what the outbox holds and the relay publishes on ``segments.raw.<vehicle>``.

A *pointer*, never the sensor data: segment id, vehicle, time window, the raw object keys and
snapshot hashes, the segments it supersedes (a joined segment replaces short ones), and the encoded
:class:`shared.segment.Segment` inline only when it is at most :data:`INLINE_RECORD_MAX` bytes
(64 KiB, far below NATS's 1 MB ``max_payload``; a segment with a large calibration bundle goes
without it, and consumers fetch it from ``GET /segments/{id}``). Versioned msgpack envelope like
every contract; decoding meets a bad message with a typed :mod:`shared.errors` error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import wire
from shared.errors import MalformedMessage
from shared.segment import Segment

SCHEMA = "avdata.SegmentAnnouncement"
VERSIONS = frozenset({1})
INLINE_RECORD_MAX = 64 * 1024
MAX_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Announcement:
    """One new segment. Times in vehicle-clock ns; ``record`` is ``Segment.encode()`` or ``None``."""

    segment_id: str
    vehicle_id: str
    start_ns: int
    end_ns: int
    raw_keys: tuple[str, ...]
    snapshot_sha256: tuple[str, ...]
    supersedes: tuple[str, ...]
    tags: tuple[str, ...]
    record: bytes | None

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "segment_id": self.segment_id, "vehicle_id": self.vehicle_id, "start_ns": self.start_ns,
            "end_ns": self.end_ns, "raw_keys": list(self.raw_keys),
            "snapshot_sha256": list(self.snapshot_sha256), "supersedes": list(self.supersedes),
            "tags": list(self.tags), "record": self.record}
        return wire.pack(SCHEMA, 1, body)

    @classmethod
    def decode(cls, data: bytes) -> Announcement:
        """Raise :class:`shared.errors.ContractError` subclasses on anything malformed."""
        _, b = wire.unpack(data, SCHEMA, VERSIONS, max_bytes=MAX_BYTES)
        f = wire.field
        record = b.get("record")
        if record is not None and not isinstance(record, bytes):
            raise MalformedMessage(f"{SCHEMA}: record must be bytes or nil")
        return cls(segment_id=f(b, "segment_id", str, SCHEMA), vehicle_id=f(b, "vehicle_id", str, SCHEMA),
                   start_ns=f(b, "start_ns", int, SCHEMA), end_ns=f(b, "end_ns", int, SCHEMA),
                   raw_keys=tuple(f(b, "raw_keys", list, SCHEMA)),
                   snapshot_sha256=tuple(f(b, "snapshot_sha256", list, SCHEMA)),
                   supersedes=tuple(f(b, "supersedes", list, SCHEMA)), tags=tuple(f(b, "tags", list, SCHEMA)),
                   record=record)


def announce(segment: Segment, record: bytes, supersedes: tuple[str, ...] = ()) -> Announcement:
    """The announcement of ``segment`` (whose encoding is ``record``)."""
    raw_keys = tuple(sorted({s.object_key for s in segment.streams if s.object_key.startswith("raw/")}))
    return Announcement(segment.segment_id, segment.vehicle_id, segment.start_ns, segment.end_ns, raw_keys,
                        segment.provenance.snapshot_sha256, supersedes, segment.tags,
                        record if len(record) <= INLINE_RECORD_MAX else None)


def message_id(segment_id: str, version: int) -> str:
    """The message id of the announcement of version ``version`` of segment ``segment_id``:
    ``<segment_id>:<version>``. ``version`` is the segment record's version
    (:attr:`cloud_ingest.storage.metadata.protocol.SegmentRow.version`, 1 at ingest; records are
    immutable). Segment ids are content-derived UUIDs, so the id names the same announcement in
    every database, on every feed and after every re-publication, unlike an outbox offset. It is
    the ``Nats-Msg-Id`` (JetStream's dedup key), each delivery's
    :attr:`cloud_ingest.queue.protocol.Delivery.msg_id` and the key of consumers' inboxes."""
    if version < 1:
        raise ValueError(f"segment record versions start at 1, got {version}")
    return f"{segment_id}:{version}"


def subject(prefix: str, vehicle_id: str) -> str:
    """``<prefix>.<vehicle>``. Vehicle ids may hold ``.`` (a NATS token separator), so it becomes
    ``~``, which vehicle ids never contain: the mapping is one-to-one."""
    return f"{prefix}.{vehicle_id.replace('.', '~')}"
