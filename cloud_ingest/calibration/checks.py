"""Calibration stage: checks on a bundle and lookups of its sensors.

A :class:`~shared.calibration.CalibrationBundle` is what the ingest attaches to a segment. This
module is the leaf the rest of the calibration code builds on:

- :func:`validate_bundle` rejects a self-inconsistent bundle before it is stored;
- :func:`extrinsics_from_matrix` turns a ``vehicle_T_sensor`` matrix from a dataset into the
  contract's quaternion form;
- :func:`find_camera` and :func:`sensor_pose` fetch one sensor for the geometry functions.

The registry lives in :mod:`cloud_ingest.calibration.registry`, the dataset importers in
:mod:`cloud_ingest.calibration.importers`, and the maths in :mod:`cloud_ingest.calibration.geometry`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

from cloud_ingest.calibration.geometry import FloatArray, extrinsic_matrix, matrix_to_quat
from cloud_ingest.errors import CalibrationNotFound, GeometryError, InvalidCalibration
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics

#: Vehicle ids and version names are stored and logged; keep them to plain printable names.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
#: Distortion models :func:`cloud_ingest.calibration.geometry.project_points` can apply.
DISTORTION_MODELS = frozenset({"plumb_bob", "none", ""})
_INT64_MAX = 2**63 - 1
_QUAT_NORM_TOLERANCE = 1e-6


def validate_bundle(bundle: CalibrationBundle) -> None:
    """Raise :class:`InvalidCalibration` naming the first problem found in ``bundle``."""
    where = f"calibration {bundle.vehicle_id!r}/{bundle.version!r}"
    for label, name in (("vehicle_id", bundle.vehicle_id), ("version", bundle.version)):
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidCalibration(f"{where}: {label} {name!r} must be 1-128 characters of "
                                     "letters, digits and . _ : + - (starting with a letter or digit)")
    if not 0 <= bundle.valid_from_ns <= _INT64_MAX:
        raise InvalidCalibration(f"{where}: valid_from_ns {bundle.valid_from_ns} is outside [0, 2^63)")
    if bundle.valid_to_ns is not None and not bundle.valid_from_ns < bundle.valid_to_ns <= _INT64_MAX:
        raise InvalidCalibration(f"{where}: valid_to_ns {bundle.valid_to_ns} must be after "
                                 f"valid_from_ns {bundle.valid_from_ns}")
    _unique(where, "camera", [c.sensor_id for c in bundle.cameras])
    _unique(where, "extrinsics", [e.sensor_id for e in bundle.extrinsics])
    for cam in bundle.cameras:
        _check_camera(where, cam)
    for ext in bundle.extrinsics:
        _check_extrinsics(where, ext)
    for sensor, offset in bundle.time_offsets_ns.items():
        if not isinstance(offset, int) or abs(offset) > 10**12:
            raise InvalidCalibration(f"{where}: time offset of {sensor!r} must be an integer number of "
                                     f"ns within ±1000 s, got {offset!r}")


def _unique(where: str, kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for sensor_id in ids:
        if not sensor_id:
            raise InvalidCalibration(f"{where}: a {kind} entry has an empty sensor_id")
        if sensor_id in seen:
            raise InvalidCalibration(f"{where}: {kind} sensor {sensor_id!r} is listed twice")
        seen.add(sensor_id)


def _check_camera(where: str, cam: CameraIntrinsics) -> None:
    if cam.width_px <= 0 or cam.height_px <= 0:
        raise InvalidCalibration(f"{where}: camera {cam.sensor_id!r} has image size "
                                 f"{cam.width_px}x{cam.height_px}")
    values = (cam.fx, cam.fy, cam.cx, cam.cy, *cam.distortion)
    if not all(math.isfinite(v) for v in values) or cam.fx <= 0 or cam.fy <= 0:
        raise InvalidCalibration(f"{where}: camera {cam.sensor_id!r} needs finite intrinsics with "
                                 f"fx, fy > 0, got fx={cam.fx} fy={cam.fy} cx={cam.cx} cy={cam.cy}")
    if cam.distortion_model not in DISTORTION_MODELS or len(cam.distortion) > 5:
        raise InvalidCalibration(f"{where}: camera {cam.sensor_id!r} distortion {cam.distortion_model!r} "
                                 f"with {len(cam.distortion)} coefficients is not supported "
                                 "(plumb_bob: k1 k2 p1 p2 k3)")


def _check_extrinsics(where: str, ext: SensorExtrinsics) -> None:
    values = (*ext.rotation_wxyz, *ext.translation_m)
    if len(ext.rotation_wxyz) != 4 or len(ext.translation_m) != 3 or not all(map(math.isfinite, values)):
        raise InvalidCalibration(f"{where}: extrinsics of {ext.sensor_id!r} need 4 finite quaternion "
                                 "and 3 finite translation components")
    norm = math.sqrt(sum(v * v for v in ext.rotation_wxyz))
    if abs(norm - 1.0) > _QUAT_NORM_TOLERANCE:
        raise InvalidCalibration(f"{where}: rotation of {ext.sensor_id!r} is not a unit quaternion "
                                 f"(norm {norm:.9f})")


def extrinsics_from_matrix(sensor_id: str, vehicle_T_sensor: npt.ArrayLike) -> SensorExtrinsics:
    """:class:`SensorExtrinsics` from a 4x4 (or 3x4) ``vehicle_T_sensor`` matrix in metres.

    The rotation is snapped to the nearest proper rotation (dataset files keep ~7 digits);
    a matrix that is not a rotation raises :class:`InvalidCalibration`.
    """
    m = np.asarray(vehicle_T_sensor, dtype=np.float64)
    if m.shape not in ((4, 4), (3, 4)):
        raise InvalidCalibration(f"extrinsics of {sensor_id!r}: expected a 4x4 or 3x4 matrix, got {m.shape}")
    try:
        q = matrix_to_quat(m[:3, :3])
    except GeometryError as exc:
        raise InvalidCalibration(f"extrinsics of {sensor_id!r}: {exc}") from exc
    if not np.all(np.isfinite(m[:3, 3])):
        raise InvalidCalibration(f"extrinsics of {sensor_id!r}: translation is not finite")
    w, x, y, z = (float(v) for v in q)
    tx, ty, tz = (float(v) for v in m[:3, 3])
    return SensorExtrinsics(sensor_id, (w, x, y, z), (tx, ty, tz))


def find_camera(bundle: CalibrationBundle, sensor_id: str) -> CameraIntrinsics:
    """The intrinsics of camera ``sensor_id``; :class:`CalibrationNotFound` when absent."""
    for cam in bundle.cameras:
        if cam.sensor_id == sensor_id:
            return cam
    known = ", ".join(c.sensor_id for c in bundle.cameras) or "none"
    raise CalibrationNotFound(f"calibration {bundle.vehicle_id!r}/{bundle.version!r} has no camera "
                              f"{sensor_id!r} (cameras: {known})")


def sensor_pose(bundle: CalibrationBundle, sensor_id: str) -> FloatArray:
    """``vehicle_T_sensor (4, 4)`` of ``sensor_id``; :class:`CalibrationNotFound` when absent."""
    for ext in bundle.extrinsics:
        if ext.sensor_id == sensor_id:
            return extrinsic_matrix(ext)
    known = ", ".join(e.sensor_id for e in bundle.extrinsics) or "none"
    raise CalibrationNotFound(f"calibration {bundle.vehicle_id!r}/{bundle.version!r} has no extrinsics "
                              f"for {sensor_id!r} (sensors: {known})")
