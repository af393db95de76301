"""An automotive radar: one return per body in view, at its nearest point, with Doppler.

The Doppler of a return is the radial velocity of the body relative to the radar, projected on the
line of sight: ``(v_body - v_ego) · (p - p_radar) / |p - p_radar|``, so a body the ego closes in on
reads negative (as real radars report it, before any ego-motion compensation). Returns are
:data:`shared.payloads.RADAR_DTYPE` in the radar's frame, nearest first. The function is pure; noise
comes from the generator it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.payloads import RADAR_DTYPE
from simulator_harness.errors import SensorConfigError
from simulator_harness.sensors.scene import Bodies, Mount


@dataclass(frozen=True)
class RadarModel:
    """Field of view (full horizontal angle, deg), range (m) and white-noise sigmas of range (m),
    azimuth (rad) and Doppler (m/s)."""

    fov_deg: float = 90.0
    max_range_m: float = 150.0
    range_noise_m: float = 0.1
    azimuth_noise_rad: float = 0.003
    doppler_noise_mps: float = 0.05

    def __post_init__(self) -> None:
        if not 1.0 <= self.fov_deg <= 360.0 or self.max_range_m <= 0:
            raise SensorConfigError(f"radar fov_deg must be 1-360 and max_range_m > 0, got {self.fov_deg}, "
                                    f"{self.max_range_m}")
        if min(self.range_noise_m, self.azimuth_noise_rad, self.doppler_noise_mps) < 0:
            raise SensorConfigError("radar noise sigmas must be >= 0")


def radar_returns(model: RadarModel, mount: Mount, ego_x_m: float, ego_y_m: float, ego_yaw_rad: float,
                  ego_vx_mps: float, ego_vy_mps: float, bodies: Bodies,
                  rng: np.random.Generator) -> npt.NDArray[np.void]:
    """Returns of every body within range and field of view, nearest first (see the module docstring)."""
    sx, sy, syaw = mount.world_pose(ego_x_m, ego_y_m, ego_yaw_rad)
    if bodies.n == 0:
        return np.empty(0, dtype=RADAR_DTYPE)
    # Nearest point of each box: the radar position in the box frame, clamped to the half extents.
    cb, sb = np.cos(bodies.yaw_rad), np.sin(bodies.yaw_rad)
    ox, oy = sx - bodies.x_m, sy - bodies.y_m
    lx = np.clip(ox * cb + oy * sb, -bodies.length_m / 2, bodies.length_m / 2)
    ly = np.clip(-ox * sb + oy * cb, -bodies.width_m / 2, bodies.width_m / 2)
    px, py = bodies.x_m + lx * cb - ly * sb, bodies.y_m + lx * sb + ly * cb
    dx, dy = px - sx, py - sy
    rng_m = np.hypot(dx, dy)
    az = np.arctan2(dy, dx) - syaw
    az = (az + math.pi) % (2.0 * math.pi) - math.pi
    dz = bodies.z_m - mount.z_m
    elev = np.arctan2(dz, np.maximum(rng_m, 1e-6))
    los_x, los_y = dx / np.maximum(rng_m, 1e-9), dy / np.maximum(rng_m, 1e-9)
    doppler = (bodies.vx_mps - ego_vx_mps) * los_x + (bodies.vy_mps - ego_vy_mps) * los_y
    seen = (rng_m > 0.1) & (rng_m <= model.max_range_m) & (np.abs(az) <= math.radians(model.fov_deg) / 2)
    order = np.flatnonzero(seen)[np.argsort(rng_m[seen], kind="stable")]
    n = order.size
    out = np.empty(n, dtype=RADAR_DTYPE)
    out["range_m"] = rng_m[order] + rng.normal(0.0, model.range_noise_m, n)
    out["azimuth_rad"] = az[order] + rng.normal(0.0, model.azimuth_noise_rad, n)
    out["elevation_rad"] = elev[order]
    out["doppler_mps"] = doppler[order] + rng.normal(0.0, model.doppler_noise_mps, n)
    out["rcs_dbsm"] = bodies.rcs_dbsm[order]
    return out
