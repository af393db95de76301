"""Payload codecs for the non-video sensors.

LiDAR and radar are structured NumPy arrays sent as raw little-endian bytes (zero-copy on both
ends); IMU, GNSS, vehicle state and the 6-DoF vehicle pose are small versioned msgpack envelopes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from shared import wire
from shared.errors import MalformedMessage

#: One LiDAR return: position in the sensor frame (m), intensity (0-255), laser ring index, and
#: time offset from the sweep's timestamp (ns), needed for motion compensation.
LIDAR_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("ring", "<u2"),
     ("t_offset_ns", "<i4")]
)

#: One radar return: range (m), azimuth (rad), elevation (rad), radial (Doppler) velocity (m/s),
#: radar cross-section (dBsm).
RADAR_DTYPE = np.dtype(
    [("range_m", "<f4"), ("azimuth_rad", "<f4"), ("elevation_rad", "<f4"),
     ("doppler_mps", "<f4"), ("rcs_dbsm", "<f4")]
)


def encode_points(points: npt.NDArray[Any], dtype: np.dtype[Any]) -> bytes | memoryview:
    """Raw bytes of a structured array (a view when already contiguous and of ``dtype``)."""
    if points.dtype != dtype:
        raise MalformedMessage(f"points have dtype {points.dtype}, expected {dtype}")
    return memoryview(np.ascontiguousarray(points)).cast("B")  # type: ignore[arg-type]


def decode_points(payload: bytes | memoryview, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """A read-only structured array over ``payload`` (no copy)."""
    if len(payload) % dtype.itemsize:
        raise MalformedMessage(
            f"point payload of {len(payload)} bytes is not a multiple of {dtype.itemsize}"
        )
    return np.frombuffer(payload, dtype=dtype)


@dataclass(frozen=True, slots=True)
class ImuSample:
    """Specific force (m/s², vehicle frame x fwd, y left, z up) and angular rate (rad/s)."""

    accel_mps2: tuple[float, float, float]
    gyro_radps: tuple[float, float, float]

    SCHEMA = "avdata.Imu"


@dataclass(frozen=True, slots=True)
class GnssFix:
    """A GNSS fix: WGS-84 degrees and metres; fix_type 0 none, 1 single, 4 RTK fixed, 5 float."""

    lat_deg: float
    lon_deg: float
    alt_m: float
    fix_type: int
    h_accuracy_m: float

    SCHEMA = "avdata.Gnss"


@dataclass(frozen=True, slots=True)
class VehicleState:
    """Ego state: pose in a local ENU frame (m, rad), speed (m/s), longitudinal and lateral
    acceleration (m/s²), steering wheel angle (rad), and whether autonomy is engaged."""

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float
    accel_mps2: float
    lat_accel_mps2: float
    steering_rad: float
    autonomy_engaged: bool

    SCHEMA = "avdata.VehicleState"


#: Payload encoding and default topic of :class:`VehiclePose` messages.
POSE_ENCODING = "pose_v1"
POSE_TOPIC = "pose"
#: How far from 1 a pose quaternion's norm may be: float32 round trips stay within ~1e-7, while a
#: larger error means the sender built it wrongly (a raw, unnormalised attitude is no orientation).
POSE_QUAT_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class VehiclePose:
    """Full 6-DoF ego pose ``world_T_vehicle`` in a local ENU frame (x east, y north, z up).

    ``position_m`` is the vehicle frame's origin (m); ``rotation_wxyz`` the unit Hamilton quaternion
    rotating vehicle-frame vectors (x forward, y left, z up) into ENU. Where a drive also publishes
    :class:`VehicleState`, both use the same local frame. Published at the pose source's own rate
    (GNSS/INS, a localiser); raises :class:`MalformedMessage` for non-finite values or a quaternion
    whose norm is off 1 by more than :data:`POSE_QUAT_NORM_TOLERANCE`.
    """

    position_m: tuple[float, float, float]
    rotation_wxyz: tuple[float, float, float, float]

    SCHEMA = "avdata.VehiclePose"

    def __post_init__(self) -> None:
        if len(self.position_m) != 3 or len(self.rotation_wxyz) != 4:
            raise MalformedMessage(f"{self.SCHEMA}: position_m needs 3 numbers and rotation_wxyz 4, got "
                                   f"{len(self.position_m)} and {len(self.rotation_wxyz)}")
        if not all(math.isfinite(v) for v in (*self.position_m, *self.rotation_wxyz)):
            raise MalformedMessage(f"{self.SCHEMA}: position or rotation is NaN or infinite")
        norm = math.sqrt(sum(v * v for v in self.rotation_wxyz))
        if abs(norm - 1.0) > POSE_QUAT_NORM_TOLERANCE:
            raise MalformedMessage(f"{self.SCHEMA}: rotation_wxyz has norm {norm:.6g}, expected a unit quaternion")


_SmallPayload = TypeVar("_SmallPayload", ImuSample, GnssFix, VehicleState, VehiclePose)


def encode_small(sample: ImuSample | GnssFix | VehicleState | VehiclePose) -> bytes:
    """Encode a small sensor sample as a version-1 envelope."""
    body = asdict(sample)
    return wire.pack(sample.SCHEMA, 1, body)


def decode_small(payload: bytes | memoryview, cls: type[_SmallPayload]) -> _SmallPayload:
    """Decode a payload written by :func:`encode_small` into ``cls``."""
    _, body = wire.unpack(bytes(payload), cls.SCHEMA, frozenset({1}), max_bytes=4096)
    kwargs: dict[str, Any] = {}
    for name, kind in cls.__annotations__.items():
        if name == "SCHEMA":
            continue
        value = body.get(name)
        if kind.startswith("tuple"):
            n = kind.count(",") + 1  # "tuple[float, float, float]": the annotation says how many
            if not isinstance(value, list | tuple) or len(value) != n:
                raise MalformedMessage(f"{cls.SCHEMA}: field {name!r} must be {n} numbers")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                raise MalformedMessage(f"{cls.SCHEMA}: field {name!r} must hold numbers only")
            kwargs[name] = tuple(float(v) for v in value)
        elif kind == "bool":
            kwargs[name] = wire.field(body, name, bool, cls.SCHEMA)
        elif kind == "int":
            kwargs[name] = wire.field(body, name, int, cls.SCHEMA)
        else:
            kwargs[name] = wire.field(body, name, float, cls.SCHEMA)
    return cls(**kwargs)
