"""The Segment: the canonical 20-40 s unit every downstream service consumes.

Sensor data stays in the immutable raw store; a Segment refers to it through one
:class:`StreamRef` per sensor (object key, MCAP channel, count and time range), so a Segment
record is small enough to travel on a queue and sit in a database row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from shared import wire
from shared.calibration import CalibrationBundle
from shared.errors import MalformedMessage
from shared.triggers import TriggerEvent

SCHEMA = "avdata.Segment"
VERSIONS = frozenset({1})
VISUAL_EMBEDDING_DIM = 512
BEV_EMBEDDING_DIM = 256


class Source(StrEnum):
    REAL = "REAL"
    SYNTHETIC = "SYNTHETIC"
    AUGMENTED = "AUGMENTED"


@dataclass(frozen=True, slots=True)
class StreamRef:
    """One sensor's messages inside a segment: where they are and how many."""

    topic: str
    sensor_id: str
    encoding: str
    object_key: str
    count: int
    first_ns: int
    last_ns: int

    def to_body(self) -> dict[str, Any]:
        return {"topic": self.topic, "sensor_id": self.sensor_id, "encoding": self.encoding,
                "object_key": self.object_key, "count": self.count,
                "first_ns": self.first_ns, "last_ns": self.last_ns}

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> StreamRef:
        f = wire.field
        return cls(topic=f(b, "topic", str, SCHEMA), sensor_id=f(b, "sensor_id", str, SCHEMA),
                   encoding=f(b, "encoding", str, SCHEMA),
                   object_key=f(b, "object_key", str, SCHEMA), count=f(b, "count", int, SCHEMA),
                   first_ns=f(b, "first_ns", int, SCHEMA), last_ns=f(b, "last_ns", int, SCHEMA))


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a segment came from: snapshot ids and hashes, versions, and who built it."""

    snapshot_ids: tuple[str, ...]
    snapshot_sha256: tuple[str, ...]
    software_version: str
    model_version: str
    builder: str
    built_ns: int
    parent_segment_ids: tuple[str, ...] = ()

    def to_body(self) -> dict[str, Any]:
        return {"snapshot_ids": list(self.snapshot_ids),
                "snapshot_sha256": list(self.snapshot_sha256),
                "software_version": self.software_version, "model_version": self.model_version,
                "builder": self.builder, "built_ns": self.built_ns,
                "parent_segment_ids": list(self.parent_segment_ids)}

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> Provenance:
        f = wire.field
        return cls(snapshot_ids=tuple(f(b, "snapshot_ids", list, SCHEMA)),
                   snapshot_sha256=tuple(f(b, "snapshot_sha256", list, SCHEMA)),
                   software_version=f(b, "software_version", str, SCHEMA),
                   model_version=f(b, "model_version", str, SCHEMA),
                   builder=f(b, "builder", str, SCHEMA), built_ns=f(b, "built_ns", int, SCHEMA),
                   parent_segment_ids=tuple(b.get("parent_segment_ids", ())))


def _embedding(value: Any, dim: int, name: str) -> npt.NDArray[np.float32] | None:
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) != dim * 4:
        raise MalformedMessage(f"{SCHEMA}: {name} must be {dim} float32 values")
    return np.frombuffer(value, dtype="<f4").copy()


@dataclass(frozen=True, slots=True, eq=False)
class Segment:
    """A canonical segment (seed schema). Times are vehicle-clock nanoseconds.

    ``visual_embedding`` (512 float32) and ``bev_embedding`` (256 float32) are ``None`` until a
    model has computed them; ``map_context`` holds map and location facts (e.g. GNSS bounding box,
    road type) as plain strings and numbers.
    """

    segment_id: str
    vehicle_id: str
    start_ns: int
    end_ns: int
    camera_frames: tuple[StreamRef, ...]
    lidar_sweeps: tuple[StreamRef, ...]
    radar_returns: tuple[StreamRef, ...]
    vehicle_states: tuple[StreamRef, ...]
    map_context: dict[str, Any]
    calibration: CalibrationBundle | None
    triggers: tuple[TriggerEvent, ...]
    visual_embedding: npt.NDArray[np.float32] | None
    bev_embedding: npt.NDArray[np.float32] | None
    language_description: str
    tags: tuple[str, ...]
    source: Source
    provenance: Provenance
    other_streams: tuple[StreamRef, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.end_ns < self.start_ns:
            raise MalformedMessage(f"segment {self.segment_id}: end_ns before start_ns")
        for name, emb, dim in (("visual_embedding", self.visual_embedding, VISUAL_EMBEDDING_DIM),
                               ("bev_embedding", self.bev_embedding, BEV_EMBEDDING_DIM)):
            if emb is not None and emb.shape != (dim,):
                raise MalformedMessage(f"segment {self.segment_id}: {name} must have shape ({dim},)")

    @property
    def streams(self) -> tuple[StreamRef, ...]:
        return (self.camera_frames + self.lidar_sweeps + self.radar_returns
                + self.vehicle_states + self.other_streams)

    def to_body(self) -> dict[str, Any]:
        def refs(items: tuple[StreamRef, ...]) -> list[dict[str, Any]]:
            return [r.to_body() for r in items]

        def emb(a: npt.NDArray[np.float32] | None) -> bytes | None:
            return None if a is None else a.astype("<f4").tobytes()

        return {
            "segment_id": self.segment_id, "vehicle_id": self.vehicle_id,
            "start_ns": self.start_ns, "end_ns": self.end_ns,
            "camera_frames": refs(self.camera_frames), "lidar_sweeps": refs(self.lidar_sweeps),
            "radar_returns": refs(self.radar_returns), "vehicle_states": refs(self.vehicle_states),
            "other_streams": refs(self.other_streams), "map_context": dict(self.map_context),
            "calibration": None if self.calibration is None else self.calibration.to_body(),
            "triggers": [t.to_body() for t in self.triggers],
            "visual_embedding": emb(self.visual_embedding), "bev_embedding": emb(self.bev_embedding),
            "language_description": self.language_description, "tags": list(self.tags),
            "source": self.source.value, "provenance": self.provenance.to_body(),
        }

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> Segment:
        f = wire.field

        def refs(name: str) -> tuple[StreamRef, ...]:
            return tuple(StreamRef.from_body(r) for r in f(b, name, list, SCHEMA))

        calib = b.get("calibration")
        try:
            source = Source(f(b, "source", str, SCHEMA))
        except ValueError as exc:
            raise MalformedMessage(f"{SCHEMA}: {exc}") from exc
        return cls(
            segment_id=f(b, "segment_id", str, SCHEMA), vehicle_id=f(b, "vehicle_id", str, SCHEMA),
            start_ns=f(b, "start_ns", int, SCHEMA), end_ns=f(b, "end_ns", int, SCHEMA),
            camera_frames=refs("camera_frames"), lidar_sweeps=refs("lidar_sweeps"),
            radar_returns=refs("radar_returns"), vehicle_states=refs("vehicle_states"),
            other_streams=tuple(StreamRef.from_body(r) for r in b.get("other_streams", ())),
            map_context=dict(f(b, "map_context", dict, SCHEMA)),
            calibration=None if calib is None else CalibrationBundle.from_body(calib),
            triggers=tuple(TriggerEvent.from_body(t) for t in f(b, "triggers", list, SCHEMA)),
            visual_embedding=_embedding(b.get("visual_embedding"), VISUAL_EMBEDDING_DIM,
                                        "visual_embedding"),
            bev_embedding=_embedding(b.get("bev_embedding"), BEV_EMBEDDING_DIM, "bev_embedding"),
            language_description=str(b.get("language_description", "")),
            tags=tuple(str(t) for t in f(b, "tags", list, SCHEMA)), source=source,
            provenance=Provenance.from_body(f(b, "provenance", dict, SCHEMA)),
        )

    def encode(self) -> bytes:
        return wire.pack(SCHEMA, 1, self.to_body())

    @classmethod
    def decode(cls, data: bytes) -> Segment:
        _, body = wire.unpack(data, SCHEMA, VERSIONS)
        return cls.from_body(body)
