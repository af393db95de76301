"""Earth frames for replaying real logs: WGS-84 ECEF ↔ geodetic, local ENU, quaternions ↔ matrices, yaw.

Pure NumPy, vectorised over rows. ENU is the local tangent frame at an origin (x east, y north,
z up); a yaw in ENU is measured from east towards north (counter-clockwise seen from above).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

#: WGS-84 semi-major axis (m) and first eccentricity squared.
WGS84_A_M = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def ecef_to_geodetic(ecef_m: npt.ArrayLike) -> tuple[Array, Array, Array]:
    """ECEF positions ``(N, 3)`` in m → latitude (deg), longitude (deg), ellipsoidal height (m).

    Fixed-point iteration on the latitude; six rounds reach sub-millimetre accuracy for any
    point near the Earth's surface.
    """
    p = np.atleast_2d(np.asarray(ecef_m, dtype=np.float64))
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    lon = np.arctan2(y, x)
    r = np.hypot(x, y)
    lat = np.arctan2(z, r * (1.0 - WGS84_E2))
    h = np.zeros_like(r)
    for _ in range(6):
        n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
        h = r / np.cos(lat) - n
        lat = np.arctan2(z, r * (1.0 - WGS84_E2 * n / (n + h)))
    return np.degrees(lat), np.degrees(lon), h


def geodetic_to_ecef(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, h_m: npt.ArrayLike) -> Array:
    """Latitude/longitude (deg) and ellipsoidal height (m) → ECEF ``(N, 3)`` in m."""
    lat = np.radians(np.atleast_1d(np.asarray(lat_deg, dtype=np.float64)))
    lon = np.radians(np.atleast_1d(np.asarray(lon_deg, dtype=np.float64)))
    h = np.atleast_1d(np.asarray(h_m, dtype=np.float64))
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack([(n + h) * np.cos(lat) * np.cos(lon), (n + h) * np.cos(lat) * np.sin(lon),
                     (n * (1.0 - WGS84_E2) + h) * np.sin(lat)], axis=-1)


def ecef_to_enu_rotation(lat_deg: float, lon_deg: float) -> Array:
    """The 3×3 matrix taking ECEF vectors to ENU vectors at the given origin."""
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    return np.array([
        [-np.sin(lo), np.cos(lo), 0.0],
        [-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)],
        [np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)],
    ])


class EnuFrame:
    """A local ENU frame anchored at an ECEF origin (m)."""

    def __init__(self, origin_ecef_m: npt.ArrayLike) -> None:
        self.origin_ecef_m = np.asarray(origin_ecef_m, dtype=np.float64).reshape(3)
        lat, lon, h = ecef_to_geodetic(self.origin_ecef_m)
        self.lat_deg, self.lon_deg, self.h_m = float(lat[0]), float(lon[0]), float(h[0])
        self.rotation = ecef_to_enu_rotation(self.lat_deg, self.lon_deg)

    def positions(self, ecef_m: npt.ArrayLike) -> Array:
        """ECEF positions ``(N, 3)`` → ENU positions ``(N, 3)`` in m relative to the origin."""
        out: Array = (np.atleast_2d(np.asarray(ecef_m, dtype=np.float64)) - self.origin_ecef_m) @ self.rotation.T
        return out

    def vectors(self, ecef: npt.ArrayLike) -> Array:
        """ECEF free vectors ``(N, 3)`` (velocities, directions) → ENU, same unit."""
        out: Array = np.atleast_2d(np.asarray(ecef, dtype=np.float64)) @ self.rotation.T
        return out


def quaternion_to_matrix(q_wxyz: npt.ArrayLike) -> Array:
    """Hamilton unit quaternions ``(N, 4)`` as ``w, x, y, z`` → rotation matrices ``(N, 3, 3)``."""
    q = np.atleast_2d(np.asarray(q_wxyz, dtype=np.float64))
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows: list[Any] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def matrix_to_quaternion(rotation: npt.ArrayLike) -> Array:
    """Rotation matrices ``(N, 3, 3)`` → unit Hamilton quaternions ``(N, 4)`` as ``w, x, y, z``, ``w >= 0``.

    Shepperd's method: each row uses the largest of the four ``4·q_i²`` diagonal combinations, so
    no division by a small number happens for any rotation (half turns included).
    """
    m = np.asarray(rotation, dtype=np.float64).reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack([1 + trace, 1 + 2 * m[:, 0, 0] - trace, 1 + 2 * m[:, 1, 1] - trace,
                     1 + 2 * m[:, 2, 2] - trace], axis=1)  # 4·w², 4·x², 4·y², 4·z²
    # Off-diagonal sums and differences: 4·(wx, wy, wz, xy, xz, yz).
    wx, wy, wz = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    xy, xz, yz = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1]
    rows = np.stack([np.stack([cand[:, 0], wx, wy, wz], axis=1), np.stack([wx, cand[:, 1], xy, xz], axis=1),
                     np.stack([wy, xy, cand[:, 2], yz], axis=1), np.stack([wz, xz, yz, cand[:, 3]], axis=1)], axis=1)
    best = np.argmax(cand, axis=1)
    q = rows[np.arange(len(m)), best]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out: Array = np.where(q[:, :1] < 0, -q, q)
    return out


def forward_yaw_enu(frame: EnuFrame, device_to_ecef: Array) -> Array:
    """Yaw (rad, ENU, from east towards north) of each device's forward axis (its first column)."""
    forward = frame.vectors(device_to_ecef[:, :, 0])
    yaw: Array = np.arctan2(forward[:, 1], forward[:, 0])
    return yaw
