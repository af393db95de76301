"""Calibration applied to LiDAR and radar (pure: arrays in, arrays out, no I/O).

- :func:`with_calibrated_refs` decides, when a segment is built, which streams get calibrated
  outputs: every LiDAR and radar stream whose sensor has extrinsics in the segment's bundle, when
  the segment has a vehicle-state stream to take ego motion from. Their refs then point at the
  segment's calibrated object; the raw refs move to ``other_streams``.
- :class:`EgoTrack` turns the vehicle-state stream (planar ``x_m``, ``y_m``, ``yaw_rad``,
  ``speed_mps`` in a local ENU frame) into SE(3) ego poses and ego velocities.
- :func:`compensate_sweep` expresses a sweep in the vehicle frame at the sweep's time;
  :func:`correct_returns` replaces each radar Doppler by the target's radial speed over ground.

Times are vehicle-clock nanoseconds after the bundle's temporal offset: a message logged at
``log_time`` was measured at ``log_time + time_offsets_ns[sensor]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_ingest.calibration.geometry import (
    EgoPoses,
    FloatArray,
    IntArray,
    motion_compensate,
    radar_ego_velocity_correct,
)
from cloud_ingest.errors import GeometryError
from shared.calibration import CalibrationBundle
from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, VehicleState
from shared.segment import Segment, StreamRef

#: How far the ego track is extrapolated (constant speed and yaw rate) past its first and last
#: state, so a sweep at the edge of the snapshot is still compensated; points beyond are clamped.
EXTRAPOLATE_NS = 500_000_000
_EXTRAPOLATE_STEPS = 10


def offset_ns(bundle: CalibrationBundle, sensor_id: str) -> int:
    """The temporal offset of ``sensor_id`` (0 for a sensor the bundle does not list)."""
    return int(bundle.time_offsets_ns.get(sensor_id, 0))


def with_calibrated_refs(seg: Segment, object_key: str) -> Segment:
    """``seg`` with its calibratable LiDAR/radar refs pointing at ``object_key`` (see module docstring).

    A calibrated ref keeps topic, sensor, encoding and count; its times are shifted by the sensor's
    temporal offset. The raw refs are kept, unchanged, at the end of ``other_streams``.
    """
    bundle = seg.calibration
    if bundle is None or not seg.vehicle_states:
        return seg
    sensors = {e.sensor_id for e in bundle.extrinsics}
    raw: list[StreamRef] = []

    def convert(refs: tuple[StreamRef, ...]) -> tuple[StreamRef, ...]:
        out = []
        for r in refs:
            if r.sensor_id not in sensors:
                out.append(r)
                continue
            raw.append(r)
            shift = offset_ns(bundle, r.sensor_id)
            out.append(dataclasses.replace(r, object_key=object_key, first_ns=r.first_ns + shift,
                                           last_ns=r.last_ns + shift))
        return tuple(out)

    lidar, radar = convert(seg.lidar_sweeps), convert(seg.radar_returns)
    if not raw:
        return seg
    return dataclasses.replace(seg, lidar_sweeps=lidar, radar_returns=radar,
                               other_streams=seg.other_streams + tuple(raw))


def calibrated_refs(seg: Segment, object_key: str) -> list[tuple[StreamRef, StreamRef]]:
    """``(calibrated ref, raw ref)`` of every stream of ``seg`` stored in ``object_key``."""
    raw = {r.topic: r for r in seg.other_streams if r.object_key != object_key
           and r.encoding in ("lidar_points_v1", "radar_v1")}
    pairs = []
    for r in seg.lidar_sweeps + seg.radar_returns:
        if r.object_key == object_key:
            if r.topic not in raw:
                raise GeometryError(f"segment {seg.segment_id}: calibrated stream {r.topic!r} has no raw ref")
            pairs.append((r, raw[r.topic]))
    return pairs


@dataclass(frozen=True, eq=False)
class EgoTrack:
    """Planar ego motion: ``t_ns (M,)`` strictly increasing, ``x_m``, ``y_m``, ``yaw_rad`` (unwrapped)
    and ``speed_mps`` ``(M,)``; ``yaw_rate_radps (M,)`` is derived from the yaw."""

    t_ns: IntArray
    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray
    yaw_rate_radps: FloatArray

    @classmethod
    def from_states(cls, t_ns: Sequence[int], states: Sequence[VehicleState]) -> EgoTrack:
        """A track from time-sorted states; repeated times keep the first state, non-finite ones are
        dropped. Raises :class:`GeometryError` when no usable state is left."""
        t = np.asarray(t_ns, dtype=np.int64)
        v = np.asarray([(s.x_m, s.y_m, s.yaw_rad, s.speed_mps) for s in states], np.float64).reshape(-1, 4)
        if t.shape != (v.shape[0],):
            raise GeometryError(f"{t.size} state times for {v.shape[0]} states")
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        keep = np.isfinite(v).all(axis=1) & np.concatenate([[True], np.diff(t) > 0])
        t, v = t[keep], v[keep]
        if t.size == 0:
            raise GeometryError("no usable vehicle state to take ego motion from")
        yaw = np.asarray(np.unwrap(v[:, 2]), dtype=np.float64)
        rate = np.gradient(yaw, t.astype(np.float64) * 1e-9) if t.size > 1 else np.zeros(1)
        return cls(t, v[:, 0], v[:, 1], yaw, v[:, 3], np.asarray(rate, dtype=np.float64))

    def bounds_ns(self) -> tuple[int, int]:
        """The time span the poses cover, extrapolation included."""
        return int(self.t_ns[0]) - EXTRAPOLATE_NS, int(self.t_ns[-1]) + EXTRAPOLATE_NS

    def _extrapolate(self, i: int, dt_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Constant speed and yaw rate (an arc) from state ``i`` over signed times ``dt_s``."""
        v, r, yaw0 = self.speed_mps[i], self.yaw_rate_radps[i], self.yaw_rad[i]
        yaw = yaw0 + r * dt_s
        if abs(r) < 1e-9:
            return self.x_m[i] + v * dt_s * np.cos(yaw0), self.y_m[i] + v * dt_s * np.sin(yaw0), yaw
        return (self.x_m[i] + v / r * (np.sin(yaw) - np.sin(yaw0)),
                self.y_m[i] - v / r * (np.cos(yaw) - np.cos(yaw0)), yaw)

    def poses(self) -> EgoPoses:
        """``world_T_vehicle`` poses (z = 0, rotation about +z), extended by :data:`EXTRAPOLATE_NS`
        at both ends along the arc of the end state's speed and yaw rate (a pose every 50 ms)."""
        steps = np.arange(1, _EXTRAPOLATE_STEPS + 1, dtype=np.int64) * (EXTRAPOLATE_NS // _EXTRAPOLATE_STEPS)
        steps_s = steps.astype(np.float64) * 1e-9
        head = self._extrapolate(0, -steps_s[::-1])
        tail = self._extrapolate(-1, steps_s)
        t = np.concatenate([self.t_ns[0] - steps[::-1], self.t_ns, self.t_ns[-1] + steps])
        x, y, yaw = (np.concatenate([h, mid, tl]) for h, mid, tl in
                     zip(head, (self.x_m, self.y_m, self.yaw_rad), tail, strict=True))
        rot = np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=-1)
        return EgoPoses(t, rot, np.stack([x, y, np.zeros_like(x)], axis=-1))

    def motion_at(self, t_ns: int) -> tuple[FloatArray, FloatArray]:
        """Ego velocity (m/s) and angular velocity (rad/s) in the vehicle frame at ``t_ns``
        (interpolated; held constant past the ends). No side slip: velocity is along +x."""
        t = np.float64(t_ns - int(self.t_ns[0]))
        rel = (self.t_ns - self.t_ns[0]).astype(np.float64)
        speed = float(np.interp(t, rel, self.speed_mps))
        rate = float(np.interp(t, rel, self.yaw_rate_radps))
        return np.array([speed, 0.0, 0.0]), np.array([0.0, 0.0, rate])


def compensate_sweep(points: npt.NDArray[Any], sweep_t_ns: int, poses: EgoPoses | None,
                     vehicle_T_sensor: FloatArray) -> tuple[npt.NDArray[Any], int]:
    """A ``LIDAR_DTYPE`` sweep in the vehicle frame at ``sweep_t_ns``, and how many points were clamped.

    Point ``i`` was measured at ``sweep_t_ns + t_offset_ns[i]`` (vehicle clock). Times outside the
    pose track are clamped to its ends (and counted); non-finite points pass through as they are.
    ``poses`` of ``None`` (no ego motion known) applies the extrinsic only. Other fields are kept.
    """
    if points.dtype != LIDAR_DTYPE:
        raise GeometryError(f"LiDAR points have dtype {points.dtype}, expected lidar_points_v1")
    out = np.array(points, copy=True)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=-1).astype(np.float64)
    good = np.isfinite(xyz).all(axis=1)
    clamped = 0
    # Sensor → vehicle frame first (np.dot: several times faster than ``@`` on (N, 3) here), then
    # undo the motion of the vehicle frame between each point's time and the sweep's.
    moved = np.dot(xyz[good], vehicle_T_sensor[:3, :3].T) + vehicle_T_sensor[:3, 3]
    if poses is not None:
        lo, hi = int(poses.t_ns[0]), int(poses.t_ns[-1])
        at = np.int64(sweep_t_ns) + points["t_offset_ns"][good].astype(np.int64)
        clamped = int(np.count_nonzero((at < lo) | (at > hi)))
        ref = min(max(sweep_t_ns, lo), hi)
        moved = motion_compensate(moved, np.clip(at, lo, hi) - ref, ref, poses)
    for i, name in enumerate(("x", "y", "z")):
        out[name][good] = moved[:, i]
    return out, clamped


def correct_returns(returns: npt.NDArray[Any], vehicle_T_radar: FloatArray, velocity_mps: FloatArray,
                    angular_radps: FloatArray) -> npt.NDArray[Any]:
    """A ``RADAR_DTYPE`` copy of ``returns`` whose ``doppler_mps`` is the radial speed over ground
    (static targets → 0); geometry stays in the radar frame."""
    if returns.dtype != RADAR_DTYPE:
        raise GeometryError(f"radar returns have dtype {returns.dtype}, expected radar_v1")
    out = np.array(returns, copy=True)
    if out.size:
        out["doppler_mps"] = radar_ego_velocity_correct(returns, vehicle_T_radar, velocity_mps, angular_radps)
    return out
