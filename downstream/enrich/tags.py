"""Tags: what a segment shows, each with where the claim comes from and how sure it is.

A :class:`Tag` is ``(name, value, source, confidence)``. ``Segment.tags`` holds plain strings so
that a search can match them exactly; :func:`encode_tags` writes each tag as ``name:value``
(``lighting:night``, ``road_type:highway``, ``agents:pedestrian``, ``event:hard_brake``), sorted and
without repeats, keeping only tags at or above a confidence floor. Source and confidence travel in
the full records (:meth:`Tag.to_body`, for the segment's processed outputs).

Grammar: a name is ``[a-z][a-z0-9_]*``; a value is ``[a-z0-9][a-z0-9_.+-]*``. Both are lowercase, so
an encoded tag never needs quoting in a URL query or a SQL ``LIKE`` pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from downstream.enrich.errors import TagFormatError

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_VALUE = re.compile(r"[a-z0-9][a-z0-9_.+-]*")
#: Tags below this confidence stay in the records but out of ``Segment.tags`` by default.
DEFAULT_MIN_CONFIDENCE = 0.5


class TagSource(StrEnum):
    """Where a tag's claim comes from."""

    SOLAR = "solar"  # sun elevation at the segment's GNSS position and time
    IMAGE = "image"  # camera image statistics
    MAP = "map"  # an HD map's context along the trajectory
    SPEED_PROFILE = "speed_profile"  # the ego speed over the segment
    DETECTIONS = "detections"  # the vehicle's per-frame camera detections
    TRACKS = "tracks"  # tracked objects (3D boxes over time)
    VEHICLE_STATE = "vehicle_state"  # ego acceleration and speed
    TRIGGER = "trigger"  # a trigger that fired on the vehicle
    OOD = "ood"  # out-of-distribution scores of the vehicle's model


@dataclass(frozen=True, slots=True)
class Tag:
    """One claim about a segment; ``confidence`` in [0, 1]."""

    name: str
    value: str
    source: TagSource
    confidence: float

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise TagFormatError(f"tag name {self.name!r} must match {_NAME.pattern}")
        if not _VALUE.fullmatch(self.value):
            raise TagFormatError(f"tag {self.name}: value {self.value!r} must match {_VALUE.pattern}")
        if not 0.0 <= self.confidence <= 1.0:
            raise TagFormatError(f"tag {self.name}:{self.value}: confidence must lie in [0, 1], "
                                 f"got {self.confidence}")

    def encode(self) -> str:
        """``name:value``, the string ``Segment.tags`` holds."""
        return f"{self.name}:{self.value}"

    def to_body(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "source": self.source.value,
                "confidence": self.confidence}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Tag:
        try:
            return cls(str(body["name"]), str(body["value"]), TagSource(body["source"]),
                       float(body["confidence"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TagFormatError):
                raise
            raise TagFormatError(f"tag record {body!r} needs name, value, a known source and a "
                                 f"numeric confidence: {exc}") from exc


def parse_tag(text: str) -> tuple[str, str]:
    """``(name, value)`` of an encoded tag; raises :class:`TagFormatError` on anything else."""
    name, sep, value = text.partition(":")
    if not sep or not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
        raise TagFormatError(f"tag {text!r} is not name:value (name {_NAME.pattern}, value {_VALUE.pattern})")
    return name, value


def encode_tags(tags: Iterable[Tag], min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> tuple[str, ...]:
    """The sorted, de-duplicated ``name:value`` strings of the tags at or above ``min_confidence``."""
    return tuple(sorted({t.encode() for t in tags if t.confidence >= min_confidence}))


def best(tags: Iterable[Tag], name: str) -> Tag | None:
    """The most confident tag called ``name`` (the first of equals), or ``None``."""
    found = [t for t in tags if t.name == name]
    return max(found, key=lambda t: t.confidence) if found else None
