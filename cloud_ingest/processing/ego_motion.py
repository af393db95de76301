"""Ego motion for motion compensation and Doppler correction (pure: records in, arrays out).

An :class:`EgoTrack` is a time series of ``world_T_vehicle`` poses with the body-frame velocity and
angular velocity at each, from one of two sources, named in :attr:`EgoTrack.model`:

- :data:`MODEL_6DOF` (:meth:`EgoTrack.from_poses`): the snapshot's ``pose_v1`` stream
  (:class:`shared.payloads.VehiclePose`, GNSS/INS or a localiser at its own rate). Position, roll,
  pitch and yaw all apply; velocities are central differences of the interpolated poses over
  ±:data:`DIFF_NS`, so irregular or near-duplicate pose times (real INS logs have poses a few ns
  apart) do not blow them up.
- :data:`MODEL_PLANAR` (:meth:`EgoTrack.from_states`): the ``vehicle_state_v1`` stream (``x_m``,
  ``y_m``, ``yaw_rad``, ``speed_mps``): z = 0, rotation about +z only, velocity along +x.

Both are extended by :data:`EXTRAPOLATE_NS` past their ends at the end sample's constant body twist
(for the planar track that is the arc of constant speed and yaw rate), so a sweep at the edge of a
snapshot is still compensated; points beyond are clamped by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cloud_ingest.calibration.geometry import EgoPoses, FloatArray, IntArray, matrix_to_quat, quat_to_matrix
from cloud_ingest.errors import GeometryError
from shared.payloads import VehiclePose, VehicleState

#: How far a track is extrapolated past its first and last sample.
EXTRAPOLATE_NS = 500_000_000
_EXTRAPOLATE_STEPS = 10
#: Half-width of the central difference that turns 6-DoF poses into velocities: 50 ms spans ~9
#: samples of a 170 Hz INS and one step of a 20 Hz one.
DIFF_NS = 50_000_000
MODEL_6DOF = "6dof_pose"
MODEL_PLANAR = "planar_vehicle_state"


def quat_multiply(a: FloatArray, b: FloatArray) -> FloatArray:
    """Hamilton products ``a ⊗ b`` of quaternions ``(..., 4)`` (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_to_rotvec(q: FloatArray) -> FloatArray:
    """Rotation vectors ``(..., 3)`` (axis × angle, rad, angle in [0, π]) of unit quaternions ``(..., 4)``."""
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2 * np.arctan2(s, q[..., :1])
    # angle / s → 2 / w as s → 0; the series keeps tiny rotations exact.
    scale = np.where(s > 1e-9, angle / np.where(s > 1e-9, s, 1.0), 2.0 / q[..., :1])
    return np.asarray(v * scale, dtype=np.float64)


def twist_motion(velocity_mps: FloatArray, angular_radps: FloatArray,
                 dt_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The motion of a frame moving at a constant body twist for ``dt_s (N,)``.

    ``velocity_mps`` and ``angular_radps`` are ``(3,)`` in the moving frame. Returns the rotation
    ``(N, 4)`` and translation ``(N, 3)`` of ``start_T_end``: the SE(3) exponential, so a planar
    twist (v, 0, 0; 0, 0, ω) traces the circular arc of radius v / ω exactly.
    """
    k = angular_radps[None, :] * dt_s[:, None]  # rotation vectors
    u = velocity_mps[None, :] * dt_s[:, None]
    theta = np.linalg.norm(k, axis=1, keepdims=True)
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    half = np.where(small, 0.5 - theta**2 / 48, np.sin(theta / 2) / safe)  # sin(θ/2) / θ
    rot = np.concatenate([np.cos(theta / 2), k * half], axis=1)
    c1 = np.where(small, 0.5 - theta**2 / 24, (1 - np.cos(theta)) / safe**2)
    c2 = np.where(small, 1 / 6 - theta**2 / 120, (theta - np.sin(theta)) / safe**3)
    ku = np.cross(k, u)
    return rot, u + c1 * ku + c2 * np.cross(k, ku)


@dataclass(frozen=True, eq=False)
class EgoTrack:
    """Ego motion: ``t_ns (M,)`` strictly increasing; ``world_T_vehicle`` as ``rotation_wxyz (M, 4)``
    and ``translation_m (M, 3)``; ``velocity_mps (M, 3)`` and ``angular_radps (M, 3)`` in the vehicle
    frame; ``model`` is :data:`MODEL_6DOF` or :data:`MODEL_PLANAR`."""

    t_ns: IntArray
    rotation_wxyz: FloatArray
    translation_m: FloatArray
    velocity_mps: FloatArray
    angular_radps: FloatArray
    model: str

    @classmethod
    def from_poses(cls, t_ns: Sequence[int], poses: Sequence[VehiclePose]) -> EgoTrack:
        """A 6-DoF track from pose samples (any order; a repeated time keeps the first in input
        order). Raises :class:`GeometryError` when there is none."""
        t = np.asarray(t_ns, dtype=np.int64)
        v = np.asarray([(*p.position_m, *p.rotation_wxyz) for p in poses], np.float64).reshape(-1, 7)
        if t.shape != (v.shape[0],):
            raise GeometryError(f"{t.size} pose times for {v.shape[0]} poses")
        t, v = _sorted_unique(t, v)
        if t.size == 0:
            raise GeometryError("no usable pose to take ego motion from")
        q = v[:, 3:] / np.linalg.norm(v[:, 3:], axis=1, keepdims=True)
        track = EgoPoses(t, q, v[:, :3])
        lo = np.maximum(t - DIFF_NS, t[0])
        hi = np.minimum(t + DIFF_NS, t[-1])
        span_s = np.maximum(hi - lo, 1).astype(np.float64)[:, None] * 1e-9
        before, after, middle = track.at(lo), track.at(hi), track.at((lo + hi) // 2)
        world_v = (after[:, :3, 3] - before[:, :3, 3]) / span_s
        # Into the vehicle frame with the rotation halfway along the chord: at the ends, where the
        # difference is one-sided, the end rotation would tilt the velocity by ω·25 ms.
        velocity = np.einsum("nji,nj->ni", middle[:, :3, :3], world_v)
        turn = np.swapaxes(before[:, :3, :3], 1, 2) @ after[:, :3, :3]  # lo_R_hi: a body-frame turn
        angular = quat_to_rotvec(matrix_to_quat(turn)) / span_s
        return cls(t, q, v[:, :3], velocity, angular, MODEL_6DOF)

    @classmethod
    def from_states(cls, t_ns: Sequence[int], states: Sequence[VehicleState]) -> EgoTrack:
        """A planar track from vehicle states (any order; repeated times keep the first, non-finite
        states are dropped). Raises :class:`GeometryError` when no usable state is left."""
        t = np.asarray(t_ns, dtype=np.int64)
        v = np.asarray([(s.x_m, s.y_m, s.yaw_rad, s.speed_mps) for s in states], np.float64).reshape(-1, 4)
        if t.shape != (v.shape[0],):
            raise GeometryError(f"{t.size} state times for {v.shape[0]} states")
        t, v = _sorted_unique(t, v)
        if t.size == 0:
            raise GeometryError("no usable vehicle state to take ego motion from")
        yaw = np.asarray(np.unwrap(v[:, 2]), dtype=np.float64)
        # Times relative to the first: float64 holds 1.7e18 ns only to ~250 ns, which turns states a
        # few ns apart (real logs have them) into a zero step and the rate into NaN.
        rate = np.gradient(yaw, (t - t[0]).astype(np.float64) * 1e-9) if t.size > 1 else np.zeros(1)
        zero = np.zeros_like(yaw)
        rot = np.stack([np.cos(yaw / 2), zero, zero, np.sin(yaw / 2)], axis=-1)
        return cls(t, rot, np.stack([v[:, 0], v[:, 1], zero], axis=-1), np.stack([v[:, 3], zero, zero], axis=-1),
                   np.stack([zero, zero, np.asarray(rate, dtype=np.float64)], axis=-1), MODEL_PLANAR)

    @property
    def yaw_rate_radps(self) -> FloatArray:
        """Angular velocity about the vehicle's z axis ``(M,)`` (the yaw rate of a planar track)."""
        return self.angular_radps[:, 2]

    def bounds_ns(self) -> tuple[int, int]:
        """The time span the poses cover, extrapolation included."""
        return int(self.t_ns[0]) - EXTRAPOLATE_NS, int(self.t_ns[-1]) + EXTRAPOLATE_NS

    def _extend(self, i: int, dt_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        step_q, step_t = twist_motion(self.velocity_mps[i], self.angular_radps[i], dt_s)
        q0 = self.rotation_wxyz[i]
        rot = quat_multiply(np.broadcast_to(q0, step_q.shape), step_q)
        return rot, self.translation_m[i] + step_t @ quat_to_matrix(q0).T

    def poses(self) -> EgoPoses:
        """``world_T_vehicle`` poses, extended by :data:`EXTRAPOLATE_NS` at both ends at the end
        sample's body twist (a pose every 50 ms)."""
        steps = np.arange(1, _EXTRAPOLATE_STEPS + 1, dtype=np.int64) * (EXTRAPOLATE_NS // _EXTRAPOLATE_STEPS)
        steps_s = steps.astype(np.float64) * 1e-9
        head_q, head_t = self._extend(0, -steps_s[::-1])
        tail_q, tail_t = self._extend(-1, steps_s)
        t = np.concatenate([self.t_ns[0] - steps[::-1], self.t_ns, self.t_ns[-1] + steps])
        return EgoPoses(t, np.concatenate([head_q, self.rotation_wxyz, tail_q]),
                        np.concatenate([head_t, self.translation_m, tail_t]))

    def motion_at(self, t_ns: int) -> tuple[FloatArray, FloatArray]:
        """Ego velocity (m/s) and angular velocity (rad/s) ``(3,)`` in the vehicle frame at ``t_ns``
        (interpolated; held constant past the ends)."""
        t = np.float64(t_ns - int(self.t_ns[0]))
        rel = (self.t_ns - self.t_ns[0]).astype(np.float64)
        velocity = np.array([np.interp(t, rel, self.velocity_mps[:, i]) for i in range(3)])
        angular = np.array([np.interp(t, rel, self.angular_radps[:, i]) for i in range(3)])
        return velocity, angular


def _sorted_unique(t: IntArray, v: FloatArray) -> tuple[IntArray, FloatArray]:
    """Rows sorted by time (stable), the first of each repeated time kept, non-finite rows dropped."""
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    keep = np.isfinite(v).all(axis=1) & np.concatenate([[True], np.diff(t) > 0])
    return t[keep], v[keep]
