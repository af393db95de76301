"""The snapshot manifest: what a snapshot file holds, and the hash that proves it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shared import wire
from shared.triggers import TriggerEvent

SCHEMA = "avdata.SnapshotManifest"
VERSIONS = frozenset({1})


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """Per-channel statistics: message count, first/last log time (ns), payload bytes."""

    topic: str
    sensor_id: str
    encoding: str
    count: int
    first_ns: int
    last_ns: int
    payload_bytes: int

    def to_body(self) -> dict[str, Any]:
        return {"topic": self.topic, "sensor_id": self.sensor_id, "encoding": self.encoding,
                "count": self.count, "first_ns": self.first_ns, "last_ns": self.last_ns,
                "payload_bytes": self.payload_bytes}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChannelSummary:
        f = wire.field
        return cls(topic=f(body, "topic", str, SCHEMA), sensor_id=f(body, "sensor_id", str, SCHEMA),
                   encoding=f(body, "encoding", str, SCHEMA), count=f(body, "count", int, SCHEMA),
                   first_ns=f(body, "first_ns", int, SCHEMA), last_ns=f(body, "last_ns", int, SCHEMA),
                   payload_bytes=f(body, "payload_bytes", int, SCHEMA))


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    """Everything the cloud needs to check a snapshot before it trusts it.

    ``start_ns``/``end_ns`` is the merged trigger window (vehicle clock); channels may start
    slightly earlier (a video channel starts at the keyframe at or before ``start_ns``).
    ``sha256`` and ``size_bytes`` describe the finished MCAP file, so they live in the sidecar
    manifest and the upload metadata, not inside the file they describe (where they are empty).
    """

    snapshot_id: str
    vehicle_id: str
    created_ns: int
    start_ns: int
    end_ns: int
    triggers: tuple[TriggerEvent, ...]
    channels: tuple[ChannelSummary, ...]
    software_version: str
    model_version: str
    calibration_version: str
    sha256: str = ""
    size_bytes: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def channel(self, topic: str) -> ChannelSummary | None:
        return next((c for c in self.channels if c.topic == topic), None)

    def with_file(self, sha256: str, size_bytes: int) -> SnapshotManifest:
        return replace(self, sha256=sha256, size_bytes=size_bytes)

    def to_body(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id, "vehicle_id": self.vehicle_id,
            "created_ns": self.created_ns, "start_ns": self.start_ns, "end_ns": self.end_ns,
            "triggers": [t.to_body() for t in self.triggers],
            "channels": [c.to_body() for c in self.channels],
            "software_version": self.software_version, "model_version": self.model_version,
            "calibration_version": self.calibration_version, "sha256": self.sha256,
            "size_bytes": self.size_bytes, "extra": dict(self.extra),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SnapshotManifest:
        f = wire.field
        return cls(
            snapshot_id=f(body, "snapshot_id", str, SCHEMA),
            vehicle_id=f(body, "vehicle_id", str, SCHEMA),
            created_ns=f(body, "created_ns", int, SCHEMA),
            start_ns=f(body, "start_ns", int, SCHEMA), end_ns=f(body, "end_ns", int, SCHEMA),
            triggers=tuple(TriggerEvent.from_body(t) for t in f(body, "triggers", list, SCHEMA)),
            channels=tuple(ChannelSummary.from_body(c) for c in f(body, "channels", list, SCHEMA)),
            software_version=f(body, "software_version", str, SCHEMA),
            model_version=f(body, "model_version", str, SCHEMA),
            calibration_version=f(body, "calibration_version", str, SCHEMA),
            sha256=f(body, "sha256", str, SCHEMA), size_bytes=f(body, "size_bytes", int, SCHEMA),
            extra={str(k): str(v) for k, v in f(body, "extra", dict, SCHEMA).items()},
        )

    def encode(self) -> bytes:
        return wire.pack(SCHEMA, 1, self.to_body())

    @classmethod
    def decode(cls, data: bytes) -> SnapshotManifest:
        _, body = wire.unpack(data, SCHEMA, VERSIONS)
        return cls.from_body(body)
