"""Calibration bundles: intrinsics, extrinsics and time offsets, versioned per vehicle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared import wire
from shared.errors import MalformedMessage

SCHEMA = "avdata.CalibrationBundle"
VERSIONS = frozenset({1})


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels and a distortion model (``plumb_bob``: k1 k2 p1 p2 k3)."""

    sensor_id: str
    width_px: int
    height_px: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorExtrinsics:
    """Pose of a sensor in the vehicle frame: unit quaternion (w, x, y, z) and translation (m)."""

    sensor_id: str
    rotation_wxyz: tuple[float, float, float, float]
    translation_m: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class CalibrationBundle:
    """One calibration version of one vehicle, valid for ``[valid_from_ns, valid_to_ns)``.

    ``valid_to_ns`` of ``None`` means "until superseded". ``time_offsets_ns`` maps a sensor id
    to the offset added to its timestamps to reach the vehicle clock.
    """

    vehicle_id: str
    version: str
    valid_from_ns: int
    valid_to_ns: int | None
    cameras: tuple[CameraIntrinsics, ...] = ()
    extrinsics: tuple[SensorExtrinsics, ...] = ()
    time_offsets_ns: dict[str, int] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id, "version": self.version,
            "valid_from_ns": self.valid_from_ns, "valid_to_ns": self.valid_to_ns,
            "cameras": [
                {"sensor_id": c.sensor_id, "width_px": c.width_px, "height_px": c.height_px,
                 "fx": c.fx, "fy": c.fy, "cx": c.cx, "cy": c.cy,
                 "distortion_model": c.distortion_model, "distortion": list(c.distortion)}
                for c in self.cameras
            ],
            "extrinsics": [
                {"sensor_id": e.sensor_id, "rotation_wxyz": list(e.rotation_wxyz),
                 "translation_m": list(e.translation_m)}
                for e in self.extrinsics
            ],
            "time_offsets_ns": dict(self.time_offsets_ns),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CalibrationBundle:
        f = wire.field
        valid_to = body.get("valid_to_ns")
        cams = tuple(
            CameraIntrinsics(
                sensor_id=f(c, "sensor_id", str, SCHEMA), width_px=f(c, "width_px", int, SCHEMA),
                height_px=f(c, "height_px", int, SCHEMA), fx=f(c, "fx", float, SCHEMA),
                fy=f(c, "fy", float, SCHEMA), cx=f(c, "cx", float, SCHEMA),
                cy=f(c, "cy", float, SCHEMA), distortion_model=str(c.get("distortion_model", "")),
                distortion=tuple(float(v) for v in c.get("distortion", ())),
            )
            for c in f(body, "cameras", list, SCHEMA)
        )
        exts = tuple(
            SensorExtrinsics(
                sensor_id=f(e, "sensor_id", str, SCHEMA),
                rotation_wxyz=_floats(f(e, "rotation_wxyz", list, SCHEMA), 4),  # type: ignore[arg-type]
                translation_m=_floats(f(e, "translation_m", list, SCHEMA), 3),  # type: ignore[arg-type]
            )
            for e in f(body, "extrinsics", list, SCHEMA)
        )
        return cls(
            vehicle_id=f(body, "vehicle_id", str, SCHEMA), version=f(body, "version", str, SCHEMA),
            valid_from_ns=f(body, "valid_from_ns", int, SCHEMA),
            valid_to_ns=None if valid_to is None else int(valid_to),
            cameras=cams, extrinsics=exts,
            time_offsets_ns={str(k): int(v) for k, v in f(body, "time_offsets_ns", dict,
                                                          SCHEMA).items()},
        )

    def encode(self) -> bytes:
        return wire.pack(SCHEMA, 1, self.to_body())

    @classmethod
    def decode(cls, data: bytes) -> CalibrationBundle:
        _, body = wire.unpack(data, SCHEMA, VERSIONS)
        return cls.from_body(body)


def _floats(values: list[Any], n: int) -> tuple[float, ...]:
    if len(values) != n:
        raise MalformedMessage(f"{SCHEMA}: expected {n} numbers, got {len(values)}")
    return tuple(float(v) for v in values)
