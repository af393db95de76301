"""Oriented bodies in the world and a LiDAR that ray-casts them and the ground, vectorised in NumPy.

:class:`Bodies` is the sensor-side view of whatever stands in the scene at one instant (closed-loop
agents, or the demo drive's boxes): oriented boxes with a velocity. :class:`BodyLidar` fires the
same ray table as :class:`~simulator_harness.sensors.lidar.LidarScanner` from a mounted sensor and
returns the nearest of the ground plane and every body, as :data:`shared.payloads.LIDAR_DTYPE`
points in the sensor frame (x forward, y left, z up). Each ray is tested against each body by
rotating it into the body's frame and running a slab test: ``(rays, bodies)`` arrays, no loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.payloads import LIDAR_DTYPE
from simulator_harness.drive import Box
from simulator_harness.sensors.lidar import LidarModel

F64 = npt.NDArray[np.float64]
#: LiDAR intensity (0-255) of the ground and of a body, before noise.
GROUND_INTENSITY, BODY_INTENSITY = 20.0, 60.0


@dataclass(frozen=True)
class Bodies:
    """``n`` oriented boxes at one instant; every array ``(n,)``. Position of the box centre (m),
    heading (rad), size (m), velocity (m/s, world frame), radar cross-section (dBsm), braking flag
    and a kind label (for the camera's colours)."""

    x_m: F64
    y_m: F64
    z_m: F64
    yaw_rad: F64
    length_m: F64
    width_m: F64
    height_m: F64
    vx_mps: F64
    vy_mps: F64
    rcs_dbsm: F64
    braking: npt.NDArray[np.bool_]
    kinds: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of bodies."""
        return int(self.x_m.shape[0])

    @staticmethod
    def from_boxes(boxes: tuple[Box, ...], vx_mps: F64 | None = None) -> Bodies:
        """Road-aligned :class:`~simulator_harness.drive.Box` objects (yaw 0), with optional speeds."""
        n = len(boxes)
        geo = np.array([(b.center_x_m, b.center_y_m, b.center_z_m, b.length_m, b.width_m, b.height_m)
                        for b in boxes]).reshape(n, 6)
        vx = np.zeros(n) if vx_mps is None else np.asarray(vx_mps, dtype=np.float64)
        rcs = np.array([10.0 if b.kind in ("lead_vehicle", "parked_car") else 0.0 for b in boxes])
        return Bodies(geo[:, 0], geo[:, 1], geo[:, 2], np.zeros(n), geo[:, 3], geo[:, 4], geo[:, 5], vx,
                      np.zeros(n), rcs, np.array([b.braking for b in boxes], dtype=bool),
                      tuple(b.kind for b in boxes))

    def to_boxes(self) -> tuple[Box, ...]:
        """Road-aligned boxes for the camera renderer, each the axis-aligned hull of its footprint."""
        c, s = np.abs(np.cos(self.yaw_rad)), np.abs(np.sin(self.yaw_rad))
        along, across = c * self.length_m + s * self.width_m, s * self.length_m + c * self.width_m
        return tuple(Box(self.kinds[i], float(self.x_m[i]), float(self.y_m[i]), float(self.z_m[i]),
                         float(along[i]), float(across[i]), float(self.height_m[i]), bool(self.braking[i]))
                     for i in range(self.n))


@dataclass(frozen=True)
class Mount:
    """Where a sensor sits on the ego: ahead ``x_m``, left ``y_m``, up ``z_m`` of the ego origin, and
    its yaw relative to the ego heading (rad)."""

    x_m: float = 0.0
    y_m: float = 0.0
    z_m: float = 1.8
    yaw_rad: float = 0.0

    def world_pose(self, ego_x_m: float, ego_y_m: float, ego_yaw_rad: float) -> tuple[float, float, float]:
        """The sensor's world ``(x, y, yaw)`` for an ego pose."""
        c, s = math.cos(ego_yaw_rad), math.sin(ego_yaw_rad)
        return (ego_x_m + self.x_m * c - self.y_m * s, ego_y_m + self.x_m * s + self.y_m * c,
                ego_yaw_rad + self.yaw_rad)


class BodyLidar:
    """A spinning LiDAR (the :class:`LidarModel` ray table) on a :class:`Mount`; the model's
    ``mount_z_m`` is ignored in favour of the mount's height."""

    def __init__(self, model: LidarModel, mount: Mount) -> None:
        self.model, self.mount = model, mount
        elev = np.radians(np.linspace(model.elev_min_deg, model.elev_max_deg, model.n_rings))
        az = 2.0 * np.pi * np.arange(model.n_azimuth) / model.n_azimuth
        az_grid, el_grid = np.meshgrid(az, elev, indexing="ij")  # firing order: azimuth-major
        self._dirs = np.stack([np.cos(el_grid) * np.cos(az_grid), np.cos(el_grid) * np.sin(az_grid),
                               np.sin(el_grid)], axis=-1).reshape(-1, 3)
        self._ring = np.tile(np.arange(model.n_rings, dtype=np.uint16), model.n_azimuth)
        step_ns = model.sweep_ns // model.n_azimuth
        self._t_offset = np.repeat(np.arange(model.n_azimuth, dtype=np.int32) * step_ns, model.n_rings)

    def sweep(self, ego_x_m: float, ego_y_m: float, ego_yaw_rad: float, bodies: Bodies,
              rng: np.random.Generator) -> npt.NDArray[np.void]:
        """One sweep from the ego pose, as ``LIDAR_DTYPE`` in the sensor frame, in firing order."""
        m, z0 = self.model, self.mount.z_m
        sx, sy, syaw = self.mount.world_pose(ego_x_m, ego_y_m, ego_yaw_rad)
        c, s = math.cos(syaw), math.sin(syaw)
        d = self._dirs
        dwx, dwy, dwz = d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c, d[:, 2]
        with np.errstate(divide="ignore"):
            t_hit = np.where(dwz < -1e-9, -z0 / dwz, np.inf)
        hit_body = np.zeros(len(d), dtype=bool)
        if bodies.n:
            near = np.hypot(bodies.x_m - sx, bodies.y_m - sy) < m.max_range_m + bodies.length_m
            t_body = _slab(sx, sy, z0, dwx, dwy, dwz, bodies, near)
            closer = t_body < t_hit
            t_hit = np.where(closer, t_body, t_hit)
            hit_body = closer
        keep = t_hit <= m.max_range_m
        r = t_hit[keep] + rng.normal(0.0, m.range_noise_m, int(keep.sum()))
        pts = d[keep] * r[:, None]
        intensity = np.where(hit_body[keep], BODY_INTENSITY, GROUND_INTENSITY) + rng.normal(0.0, 3.0, len(r))
        out = np.empty(len(r), dtype=LIDAR_DTYPE)
        out["x"], out["y"], out["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        out["intensity"] = np.clip(intensity, 0.0, 255.0)
        out["ring"] = self._ring[keep]
        out["t_offset_ns"] = self._t_offset[keep]
        return out


def _slab(sx: float, sy: float, sz: float, dwx: F64, dwy: F64, dwz: F64, bodies: Bodies,
          use: npt.NDArray[np.bool_]) -> F64:
    """Nearest positive distance along each ray (R,) to any of the ``use`` bodies; ``inf`` if none."""
    idx = np.flatnonzero(use)
    if idx.size == 0:
        return np.full(dwx.shape, np.inf)
    cb, sb = np.cos(bodies.yaw_rad[idx]), np.sin(bodies.yaw_rad[idx])
    ox, oy = sx - bodies.x_m[idx], sy - bodies.y_m[idx]
    # Origin and directions in each body's frame: (B,) and (R, B).
    o = np.stack([ox * cb + oy * sb, -ox * sb + oy * cb, sz - bodies.z_m[idx]])
    dirs = np.stack([dwx[:, None] * cb + dwy[:, None] * sb, -dwx[:, None] * sb + dwy[:, None] * cb,
                     np.broadcast_to(dwz[:, None], (dwx.size, idx.size))])
    half = np.stack([bodies.length_m[idx], bodies.width_m[idx], bodies.height_m[idx]]) / 2.0
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    t0 = (-half[:, None, :] - o[:, None, :]) / safe
    t1 = (half[:, None, :] - o[:, None, :]) / safe
    t_near = np.minimum(t0, t1).max(axis=0)
    t_far = np.maximum(t0, t1).min(axis=0)
    t = np.where((t_near <= t_far) & (t_near > 0.0), t_near, np.inf)
    return np.asarray(t.min(axis=1))
