"""Pure array geometry for calibrated sensor data: rotations, poses, projection, compensation.

Conventions used throughout:

- Quaternions are ``(w, x, y, z)``, Hamilton product, active: ``quat_to_matrix(q) @ v`` rotates ``v``.
- A pose ``a_T_b`` is a 4x4 homogeneous matrix that maps points expressed in frame ``b`` into frame
  ``a``. Sensor extrinsics are ``vehicle_T_sensor``; ego poses are ``world_T_vehicle``.
- Vehicle frame: x forward, y left, z up, metres. Camera frame: optical, x right, y down, z forward.
- Times are integer nanoseconds; lengths metres; angles radians.

The per-point maths of motion compensation (quaternions, rigid transforms, pose interpolation,
:func:`motion_compensate`) takes an array module ``xp``: NumPy by default, CuPy for a GPU
(:func:`array_module` imports it only when asked). Inputs may live on the host; outputs are
``xp`` arrays, and :func:`to_numpy` brings them back. The rest (SVD-based checks, projection,
radar) is NumPy only: it runs on a handful of values per message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_ingest.errors import GeometryError
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Largest deviation of a rotation's singular values from 1 accepted before it is re-orthonormalised.
ROTATION_TOLERANCE = 1e-3
#: Array modules :func:`array_module` knows (CuPy mirrors the NumPy API used here).
ARRAY_MODULES = ("numpy", "cupy")


def array_module(name: str) -> Any:
    """The array module called ``name``: ``numpy``, or ``cupy`` (imported now, not before).

    Raises :class:`GeometryError` for another name or when CuPy cannot be imported.
    """
    if name == "numpy":
        return np
    if name != "cupy":
        raise GeometryError(f"unknown array module {name!r}: use one of {', '.join(ARRAY_MODULES)}")
    try:
        return importlib.import_module("cupy")
    except ImportError as exc:
        raise GeometryError(f"array module 'cupy' cannot be imported ({exc}): install the gpu extra "
                            "(cupy-cuda12x) on a machine with a CUDA GPU, or use 'numpy'") from exc


def to_numpy(array: Any) -> npt.NDArray[Any]:
    """``array`` as a NumPy array: a CuPy array is copied to the host, a NumPy one returned as is."""
    get = getattr(array, "get", None)  # cupy.ndarray.get() copies to the host; ndarray has no .get
    return np.asarray(get() if callable(get) else array)


def _as(array: npt.ArrayLike, tail: tuple[int, ...], name: str, xp: Any = np) -> FloatArray:
    out: FloatArray = xp.asarray(array, dtype=xp.float64)
    if out.shape[out.ndim - len(tail):] != tail:
        raise GeometryError(f"{name} must have shape (..., {', '.join(map(str, tail))}), got {out.shape}")
    if not bool(xp.all(xp.isfinite(out))):
        raise GeometryError(f"{name} contains NaN or infinity")
    return out


def quat_to_matrix(q_wxyz: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
    """Rotation matrices ``(..., 3, 3)`` from quaternions ``(..., 4)`` (normalised here)."""
    q = _as(q_wxyz, (4,), "quaternion", xp)
    norm = xp.linalg.norm(q, axis=-1, keepdims=True)
    if bool(xp.any(norm < 1e-12)):
        raise GeometryError("quaternion has zero norm")
    w, x, y, z = xp.moveaxis(q / norm, -1, 0)
    flat = xp.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    out: FloatArray = flat.reshape((*q.shape[:-1], 3, 3))
    return out


def nearest_rotation(matrix: npt.ArrayLike) -> FloatArray:
    """The proper rotation closest to ``matrix (..., 3, 3)``; rejects reflections and non-rotations.

    Real calibration files store rotations to 6-7 digits, so they are orthonormal only to ~1e-6;
    deviations beyond :data:`ROTATION_TOLERANCE` mean the matrix is not a rotation at all.
    """
    m = _as(matrix, (3, 3), "rotation")
    u, s, vt = np.linalg.svd(m)
    if np.any(np.abs(s - 1.0) > ROTATION_TOLERANCE):
        raise GeometryError(f"matrix is not a rotation (singular values {np.round(s, 6).tolist()})")
    r: FloatArray = np.asarray(u @ vt, dtype=np.float64)
    if np.any(np.linalg.det(r) < 0):
        raise GeometryError("matrix is a reflection (determinant -1), not a rotation")
    return r


def matrix_to_quat(matrix: npt.ArrayLike) -> FloatArray:
    """Unit quaternions ``(..., 4)``, ``w >= 0``, from rotation matrices ``(..., 3, 3)``."""
    rotations = nearest_rotation(matrix)
    m = rotations.reshape(-1, 3, 3)
    trace = np.trace(m, axis1=-2, axis2=-1)
    choice = np.argmax(np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2], trace], axis=-1), axis=-1)
    q = np.empty((m.shape[0], 4))
    sel = choice == 3
    q[sel] = np.stack([1 + trace[sel], m[sel, 2, 1] - m[sel, 1, 2], m[sel, 0, 2] - m[sel, 2, 0],
                       m[sel, 1, 0] - m[sel, 0, 1]], axis=-1)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        sel = choice == i
        ms = m[sel]
        q[sel, 0] = ms[:, k, j] - ms[:, j, k]
        q[sel, 1 + i] = 1 - trace[sel] + 2 * ms[:, i, i]
        q[sel, 1 + j] = ms[:, j, i] + ms[:, i, j]
        q[sel, 1 + k] = ms[:, k, i] + ms[:, i, k]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q).reshape((*rotations.shape[:-2], 4))


def quat_slerp(q0: npt.ArrayLike, q1: npt.ArrayLike, alpha: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
    """Spherical linear interpolation between unit quaternions along the shorter arc.

    ``q0``, ``q1`` broadcast as ``(..., 4)``; ``alpha`` in [0, 1] broadcasts as ``(...)``.
    """
    a = _as(q0, (4,), "q0", xp)
    b = _as(q1, (4,), "q1", xp)
    a = a / xp.linalg.norm(a, axis=-1, keepdims=True)
    b = b / xp.linalg.norm(b, axis=-1, keepdims=True)
    t = xp.asarray(alpha, dtype=xp.float64)[..., None]
    dot = xp.sum(a * b, axis=-1, keepdims=True)
    b = xp.where(dot < 0, -b, b)
    dot = xp.clip(xp.abs(dot), 0.0, 1.0)
    theta = xp.arccos(dot)
    sin_theta = xp.sin(theta)
    near = sin_theta < 1e-6  # nearly identical rotations: the linear blend is exact to 1e-12
    safe = xp.where(near, 1.0, sin_theta)
    w0 = xp.where(near, 1.0 - t, xp.sin((1.0 - t) * theta) / safe)
    w1 = xp.where(near, t, xp.sin(t * theta) / safe)
    out = w0 * a + w1 * b
    result: FloatArray = out / xp.linalg.norm(out, axis=-1, keepdims=True)
    return result


def se3(rotation: npt.ArrayLike, translation_m: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
    """Homogeneous transforms ``(..., 4, 4)`` from rotations ``(..., 3, 3)`` and translations."""
    r = _as(rotation, (3, 3), "rotation", xp)
    t = _as(translation_m, (3,), "translation", xp)
    shape = np.broadcast_shapes(r.shape[:-2], t.shape[:-1])
    out: FloatArray = xp.zeros((*shape, 4, 4))
    out[..., :3, :3] = r
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def se3_inverse(transform: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
    """Inverse of rigid transforms ``(..., 4, 4)`` (transpose the rotation, no general inverse)."""
    t = _as(transform, (4, 4), "transform", xp)
    r_inv = xp.swapaxes(t[..., :3, :3], -1, -2)
    return se3(r_inv, -xp.einsum("...ij,...j->...i", r_inv, t[..., :3, 3]), xp=xp)


def se3_compose(*transforms: npt.ArrayLike, xp: Any = np) -> FloatArray:
    """``a_T_b @ b_T_c @ ...``: the product of rigid transforms, left to right."""
    if not transforms:
        raise GeometryError("se3_compose needs at least one transform")
    out = _as(transforms[0], (4, 4), "transform", xp)
    for t in transforms[1:]:
        out = out @ _as(t, (4, 4), "transform", xp)
    return out


def transform_points(transform: npt.ArrayLike, points_m: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
    """Apply ``a_T_b (4, 4)`` to points ``(N, 3)`` in frame b; returns ``(N, 3)`` in frame a."""
    t = _as(transform, (4, 4), "transform", xp)
    p = _as(points_m, (3,), "points", xp)
    out: FloatArray = p @ t[:3, :3].T + t[:3, 3]
    return out


def extrinsic_matrix(extrinsics: SensorExtrinsics) -> FloatArray:
    """``vehicle_T_sensor (4, 4)`` of one :class:`SensorExtrinsics`."""
    return se3(quat_to_matrix(extrinsics.rotation_wxyz), extrinsics.translation_m)


@dataclass(frozen=True, eq=False)
class Projection:
    """Points projected into one camera image.

    ``uv_px`` is ``(N, 2)`` pixel coordinates (column, row; NaN behind the camera), ``depth_m`` is
    ``(N,)`` the distance along the optical axis (negative behind the camera), and ``in_bounds``
    ``(N,)`` marks points in front of the camera that land inside the image.
    """

    uv_px: FloatArray
    depth_m: FloatArray
    in_bounds: BoolArray


def _distort(x: FloatArray, y: FloatArray, camera: CameraIntrinsics) -> tuple[FloatArray, FloatArray, BoolArray]:
    if camera.distortion_model not in ("plumb_bob", "none", "") or len(camera.distortion) > 5:
        raise GeometryError(f"camera {camera.sensor_id!r}: unsupported distortion "
                            f"{camera.distortion_model!r} with {len(camera.distortion)} coefficients")
    k1, k2, p1, p2, k3 = (*camera.distortion, 0.0, 0.0, 0.0, 0.0, 0.0)[:5]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    # Past the radius where r * radial(r) stops growing, the polynomial folds far-off rays back into
    # the image; such points are not visible, so they are marked out of bounds.
    monotonic = 1 + r2 * (3 * k1 + r2 * (5 * k2 + r2 * 7 * k3)) > 0
    return xd, yd, monotonic


def project_points(points_vehicle_m: npt.ArrayLike, camera: CameraIntrinsics,
                   vehicle_T_camera: npt.ArrayLike, min_depth_m: float = 0.1) -> Projection:
    """Project vehicle-frame points ``(N, 3)`` through a pinhole camera with plumb_bob distortion."""
    cam = transform_points(se3_inverse(vehicle_T_camera), points_vehicle_m)
    depth = cam[:, 2]
    front = depth > min_depth_m
    z = np.where(front, depth, 1.0)
    xd, yd, monotonic = _distort(cam[:, 0] / z, cam[:, 1] / z, camera)
    u = np.where(front, camera.fx * xd + camera.cx, np.nan)
    v = np.where(front, camera.fy * yd + camera.cy, np.nan)
    with np.errstate(invalid="ignore"):
        inside = (u >= 0) & (u < camera.width_px) & (v >= 0) & (v < camera.height_px)
    return Projection(np.stack([u, v], axis=-1), depth, front & monotonic & inside)


@dataclass(frozen=True, eq=False)
class EgoPoses:
    """A track of ego poses ``world_T_vehicle``: ``t_ns (M,)`` strictly increasing,
    ``rotation_wxyz (M, 4)`` and ``translation_m (M, 3)``."""

    t_ns: IntArray
    rotation_wxyz: FloatArray
    translation_m: FloatArray

    def __post_init__(self) -> None:
        t = np.asarray(self.t_ns)
        if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.integer):
            raise GeometryError(f"pose times must be a non-empty 1-D integer array, got {t.dtype} {t.shape}")
        if np.any(np.diff(t) <= 0):
            raise GeometryError("pose times must be strictly increasing")
        rot = _as(self.rotation_wxyz, (4,), "pose rotations")
        trans = _as(self.translation_m, (3,), "pose translations")
        if rot.shape != (t.size, 4) or trans.shape != (t.size, 3):
            raise GeometryError(f"{t.size} pose times but rotations {rot.shape}, translations {trans.shape}")
        object.__setattr__(self, "t_ns", t.astype(np.int64))
        object.__setattr__(self, "rotation_wxyz", rot)
        object.__setattr__(self, "translation_m", trans)

    def at(self, t_ns: npt.ArrayLike, *, xp: Any = np) -> FloatArray:
        """``world_T_vehicle (N, 4, 4)`` at times ``(N,)``: linear in translation, SLERP in rotation.

        The result is an ``xp`` array; the track's own arrays are copied to ``xp`` per call (they
        are small: one row per pose).
        """
        q = xp.atleast_1d(xp.asarray(t_ns))
        if not np.issubdtype(q.dtype, np.integer):
            raise GeometryError(f"query times must be integer nanoseconds, got {q.dtype}")
        first, last = int(self.t_ns[0]), int(self.t_ns[-1])
        if q.size and (int(q.min()) < first or int(q.max()) > last):
            raise GeometryError(f"times [{int(q.min())}, {int(q.max())}] ns fall outside the ego-pose "
                                f"track [{first}, {last}] ns")
        times, rotations = xp.asarray(self.t_ns), xp.asarray(self.rotation_wxyz)
        translations = xp.asarray(self.translation_m)
        if self.t_ns.size == 1:
            one = se3(quat_to_matrix(rotations[0], xp=xp), translations[0], xp=xp)
            tiled: FloatArray = xp.broadcast_to(one, (q.size, 4, 4)).copy()
            return tiled
        i = xp.clip(xp.searchsorted(times, q, side="right") - 1, 0, self.t_ns.size - 2)
        span = (times[i + 1] - times[i]).astype(xp.float64)
        alpha = (q.astype(xp.int64) - times[i]).astype(xp.float64) / span
        trans = translations[i] + alpha[:, None] * (translations[i + 1] - translations[i])
        rot = quat_slerp(rotations[i], rotations[i + 1], alpha, xp=xp)
        return se3(quat_to_matrix(rot, xp=xp), trans, xp=xp)


def motion_compensate(points_m: npt.ArrayLike, t_offset_ns: npt.ArrayLike, sweep_t_ns: int,
                      poses: EgoPoses, *, ref_t_ns: int | None = None,
                      vehicle_T_sensor: npt.ArrayLike | None = None, xp: Any = np) -> FloatArray:
    """Undo ego motion inside a LiDAR sweep.

    Point ``i`` ``(N, 3)`` was measured at ``sweep_t_ns + t_offset_ns[i]`` in the sensor frame (or
    the vehicle frame at that instant when ``vehicle_T_sensor`` is ``None``). Returns ``(N, 3)`` in
    the vehicle frame at ``ref_t_ns`` (default ``sweep_t_ns``), i.e.
    ``inv(world_T_vehicle(ref)) @ world_T_vehicle(t_i) @ vehicle_T_sensor @ p_i``, as an ``xp`` array.
    All six degrees of freedom of ``poses`` apply: a planar track is simply one with z = 0 and
    rotations about +z.
    """
    pts = _as(points_m, (3,), "points", xp)
    if vehicle_T_sensor is not None:
        pts = transform_points(vehicle_T_sensor, pts, xp=xp)
    offsets = xp.asarray(t_offset_ns)
    if offsets.shape != pts.shape[:1] or not np.issubdtype(offsets.dtype, np.integer):
        raise GeometryError(f"t_offset_ns must be {pts.shape[0]} integers, got {offsets.dtype} {offsets.shape}")
    ref = sweep_t_ns if ref_t_ns is None else ref_t_ns
    # Points share firing times in bursts; interpolating each distinct time once saves work.
    times, inverse = xp.unique(offsets.astype(xp.int64) + np.int64(sweep_t_ns), return_inverse=True)
    ref_T_point = se3_inverse(poses.at([ref], xp=xp)[0], xp=xp) @ poses.at(times, xp=xp)
    rel = ref_T_point[inverse.reshape(-1), :3, :]
    out: FloatArray = (rel[:, :, :3] @ pts[:, :, None])[:, :, 0] + rel[:, :, 3]
    return out


def radar_directions(azimuth_rad: npt.ArrayLike, elevation_rad: npt.ArrayLike) -> FloatArray:
    """Unit rays ``(N, 3)`` in the radar frame (x boresight, y left, z up)."""
    az = np.asarray(azimuth_rad, dtype=np.float64)
    el = np.asarray(elevation_rad, dtype=np.float64)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def radar_ego_velocity_correct(returns: npt.NDArray[Any], vehicle_T_radar: npt.ArrayLike,
                               ego_velocity_mps: npt.ArrayLike,
                               ego_angular_velocity_radps: npt.ArrayLike = (0.0, 0.0, 0.0)) -> FloatArray:
    """Radial velocity over ground ``(N,)`` (m/s, positive moving away) of radar returns.

    ``returns`` is a ``shared.payloads.RADAR_DTYPE`` array whose ``doppler_mps`` is the measured
    range rate. The radar moves with ``v_s = v_ego + ω × r_radar`` (vehicle frame), under which a
    static target shows a Doppler of ``-v_s · u``; removing that leaves the target's own radial speed:
    ``doppler + v_s · u``. Static targets therefore come out at 0 for any ego motion.
    """
    transform = _as(vehicle_T_radar, (4, 4), "vehicle_T_radar")
    v = _as(ego_velocity_mps, (3,), "ego velocity")
    omega = _as(ego_angular_velocity_radps, (3,), "ego angular velocity")
    rays = radar_directions(returns["azimuth_rad"], returns["elevation_rad"]) @ transform[:3, :3].T
    v_sensor = v + np.cross(omega, transform[:3, 3])
    return np.asarray(returns["doppler_mps"], dtype=np.float64) + rays @ v_sensor


def to_vehicle_clock(t_ns: npt.ArrayLike, bundle: CalibrationBundle, sensor_id: str) -> IntArray:
    """Sensor timestamps ``(N,)`` shifted onto the vehicle clock by the bundle's temporal offset.

    A sensor absent from ``bundle.time_offsets_ns`` is on the vehicle clock already (offset 0).
    """
    t = np.asarray(t_ns)
    if not np.issubdtype(t.dtype, np.integer):
        raise GeometryError(f"timestamps must be integer nanoseconds, got {t.dtype}")
    return np.asarray(t, dtype=np.int64) + np.int64(bundle.time_offsets_ns.get(sensor_id, 0))
