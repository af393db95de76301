"""A spinning LiDAR: rays from a roof-mounted sensor against the ground plane and the scene's boxes.

Each sweep fires ``n_rings`` lasers at ``n_azimuth`` evenly spaced angles; a ray returns the
nearest of the ground (rings looking down make the familiar concentric pattern) and the boxes of
the scene, within ``max_range_m``. Points are in the sensor frame (x forward, y left, z up,
origin at the sensor) as :data:`shared.payloads.LIDAR_DTYPE`, ordered by firing time, with
``t_offset_ns`` across the sweep. The whole sweep is cast from the pose at its start: the
drive's motion during one 100 ms sweep is what ``t_offset_ns`` lets a receiver compensate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.payloads import LIDAR_DTYPE
from simulator_harness.drive import LANE_LINES, ROAD_EDGES_Y_M, Box
from simulator_harness.errors import SensorConfigError

#: Intensity (0-255) by what the ray hit, before noise.
INTENSITY = {"grass": 8.0, "road": 20.0, "line": 90.0, "lead_vehicle": 60.0, "parked_car": 55.0,
             "post": 140.0}


@dataclass(frozen=True, slots=True)
class LidarModel:
    """Geometry and noise of the LiDAR: elevation span (deg), rings, azimuth steps per sweep,
    mounting height (m), sweep period (ns), maximum range and range noise sigma (m)."""

    n_rings: int = 16
    elev_min_deg: float = -15.0
    elev_max_deg: float = 3.0
    n_azimuth: int = 360
    mount_z_m: float = 1.8
    sweep_ns: int = 100_000_000
    max_range_m: float = 100.0
    range_noise_m: float = 0.02

    def __post_init__(self) -> None:
        if self.n_rings < 1 or self.n_azimuth < 1 or self.sweep_ns <= 0:
            raise SensorConfigError("n_rings, n_azimuth and sweep_ns must be positive")
        if not -90.0 < self.elev_min_deg < self.elev_max_deg < 90.0:
            raise SensorConfigError(
                f"elevations must satisfy -90 < min < max < 90, got {self.elev_min_deg}, {self.elev_max_deg}"
            )
        if self.mount_z_m <= 0 or self.max_range_m <= 0 or self.range_noise_m < 0:
            raise SensorConfigError("mount_z_m and max_range_m must be > 0, range_noise_m >= 0")


class LidarScanner:
    """Casts sweeps for one :class:`LidarModel`; the ray table is built once."""

    def __init__(self, model: LidarModel) -> None:
        self.model = model
        elev = np.radians(np.linspace(model.elev_min_deg, model.elev_max_deg, model.n_rings))
        az = 2.0 * np.pi * np.arange(model.n_azimuth) / model.n_azimuth
        az_grid, el_grid = np.meshgrid(az, elev, indexing="ij")  # (n_azimuth, n_rings): firing order
        self._dirs = np.stack([np.cos(el_grid) * np.cos(az_grid), np.cos(el_grid) * np.sin(az_grid),
                               np.sin(el_grid)], axis=-1).reshape(-1, 3)
        self._ring = np.tile(np.arange(model.n_rings, dtype=np.uint16), model.n_azimuth)
        step_ns = model.sweep_ns // model.n_azimuth
        self._t_offset = np.repeat(np.arange(model.n_azimuth, dtype=np.int32) * step_ns, model.n_rings)

    def sweep(self, x_m: float, y_m: float, yaw_rad: float, boxes: tuple[Box, ...],
              rng: np.random.Generator) -> npt.NDArray[np.void]:
        """One sweep from the ego pose (the sensor sits above the ego origin), as LIDAR_DTYPE."""
        m = self.model
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        d = self._dirs
        dw = np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c, d[:, 2]], axis=-1)
        origin = np.array([x_m, y_m, m.mount_z_m])
        with np.errstate(divide="ignore"):
            t_ground = np.where(dw[:, 2] < -1e-9, -m.mount_z_m / dw[:, 2], np.inf)
        t_hit = np.minimum(t_ground, m.max_range_m)
        hit_kind = np.where(t_ground <= m.max_range_m, -1, -2)  # -1 ground, -2 nothing, i = box i
        near = [b for b in boxes
                if math.hypot(b.center_x_m - x_m, b.center_y_m - y_m) < m.max_range_m + b.length_m]
        for i, box in enumerate(near):
            rays = self._rays_towards(box, x_m, y_m, yaw_rad)
            t_box = _ray_box(origin, dw[rays], box)
            closer = t_box < t_hit[rays]
            t_hit[rays[closer]] = t_box[closer]
            hit_kind[rays[closer]] = i
        keep = hit_kind != -2
        r = t_hit[keep] + rng.normal(0.0, m.range_noise_m, int(keep.sum()))
        pts = d[keep] * r[:, None]
        kinds = hit_kind[keep]
        intensity = np.empty(len(r), dtype=np.float64)
        ground = kinds == -1
        gy = y_m + (pts[:, 0] * s + pts[:, 1] * c)
        on_road = (gy >= ROAD_EDGES_Y_M[0]) & (gy <= ROAD_EDGES_Y_M[1])
        on_line = np.zeros_like(on_road)
        for line_y, _ in LANE_LINES:
            on_line |= np.abs(gy - line_y) < 0.075
        intensity[ground] = np.where(on_line, INTENSITY["line"],
                                     np.where(on_road, INTENSITY["road"], INTENSITY["grass"]))[ground]
        for i, box in enumerate(near):
            intensity[kinds == i] = INTENSITY.get(box.kind, 50.0)
        intensity = np.clip(intensity + rng.normal(0.0, 3.0, len(r)), 0.0, 255.0)
        out = np.empty(len(r), dtype=LIDAR_DTYPE)
        out["x"], out["y"], out["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        out["intensity"] = intensity
        out["ring"] = self._ring[keep]
        out["t_offset_ns"] = self._t_offset[keep]
        return out

    def _rays_towards(self, box: Box, x_m: float, y_m: float, yaw_rad: float) -> npt.NDArray[np.intp]:
        """Indices of the rays whose azimuth falls within the box's angular extent."""
        m = self.model
        dx, dy = box.center_x_m - x_m, box.center_y_m - y_m
        hl, hw = box.length_m / 2, box.width_m / 2
        if abs(dx) <= hl and abs(dy) <= hw:  # the sensor is inside the footprint: every ray
            return np.arange(len(self._dirs))
        center = math.atan2(dy, dx)
        spread = [math.remainder(math.atan2(dy + ey, dx + ex) - center, math.tau)
                  for ex in (-hl, hl) for ey in (-hw, hw)]
        step = math.tau / m.n_azimuth
        first = math.floor((center + min(spread) - yaw_rad) / step)
        last = math.ceil((center + max(spread) - yaw_rad) / step)
        az = np.arange(first, last + 1) % m.n_azimuth
        return (az[:, None] * m.n_rings + np.arange(m.n_rings)[None, :]).reshape(-1)


def _ray_box(origin: npt.NDArray[np.float64], dirs: npt.NDArray[np.float64],
             box: Box) -> npt.NDArray[np.float64]:
    """Distance along each ray to an axis-aligned box (slab test); ``inf`` where it misses."""
    half = np.array([box.length_m, box.width_m, box.height_m]) / 2
    center = np.array([box.center_x_m, box.center_y_m, box.center_z_m])
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    t0 = (center - half - origin) / safe
    t1 = (center + half - origin) / safe
    t_near = np.minimum(t0, t1).max(axis=1)
    t_far = np.maximum(t0, t1).min(axis=1)
    return np.where((t_near <= t_far) & (t_near > 0.0), t_near, np.inf)
