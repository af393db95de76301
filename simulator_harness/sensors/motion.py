"""IMU, GNSS and vehicle-state readings derived from the ego trajectory.

Each ``*_readings`` function is pure and vectorised over an :class:`EgoTrajectory` of ``n``
samples; the noise comes from the generator it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.payloads import GnssFix, ImuSample, VehicleState
from simulator_harness.drive import EgoTrajectory
from simulator_harness.errors import SensorConfigError

#: Standard gravity (m/s²): what a resting accelerometer reads on its z axis (specific force).
GRAVITY_MPS2 = 9.80665
_WGS84_A_M, _WGS84_E2 = 6378137.0, 6.69437999014e-3


@dataclass(frozen=True, slots=True)
class ImuModel:
    """White noise sigmas of the accelerometer (m/s²) and gyroscope (rad/s)."""

    accel_noise_mps2: float = 0.05
    gyro_noise_radps: float = 0.002

    def __post_init__(self) -> None:
        if self.accel_noise_mps2 < 0 or self.gyro_noise_radps < 0:
            raise SensorConfigError("IMU noise sigmas must be >= 0")


@dataclass(frozen=True, slots=True)
class GnssModel:
    """The local frame's origin on WGS-84 (deg, m) and the receiver's horizontal noise (m)."""

    origin_lat_deg: float = 48.137
    origin_lon_deg: float = 11.575
    origin_alt_m: float = 520.0
    h_noise_m: float = 0.01
    fix_type: int = 4

    def __post_init__(self) -> None:
        if not -85.0 <= self.origin_lat_deg <= 85.0 or not -180.0 <= self.origin_lon_deg <= 180.0:
            raise SensorConfigError("GNSS origin must be within lat ±85, lon ±180 degrees")
        if self.h_noise_m < 0:
            raise SensorConfigError("h_noise_m must be >= 0")


def imu_readings(traj: EgoTrajectory, model: ImuModel, rng: np.random.Generator) -> list[ImuSample]:
    """Specific force (longitudinal, lateral, +g up) and angular rate (yaw rate on z), with noise."""
    n = len(traj.t_s)
    accel = np.stack([traj.accel_mps2, traj.lat_accel_mps2, np.full(n, GRAVITY_MPS2)], axis=1)
    gyro = np.stack([np.zeros(n), np.zeros(n), traj.yaw_rate_radps], axis=1)
    accel = accel + rng.normal(0.0, model.accel_noise_mps2, (n, 3))
    gyro = gyro + rng.normal(0.0, model.gyro_noise_radps, (n, 3))
    return [ImuSample(accel_mps2=(float(a[0]), float(a[1]), float(a[2])),
                      gyro_radps=(float(g[0]), float(g[1]), float(g[2])))
            for a, g in zip(accel, gyro, strict=True)]


def enu_to_lat_lon(x_m: np.ndarray, y_m: np.ndarray, model: GnssModel) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (deg) of local east/north offsets (m), on the tangent plane at the
    origin (sub-millimetre error over the few hundred metres of a drive)."""
    lat0 = math.radians(model.origin_lat_deg)
    w = 1.0 - _WGS84_E2 * math.sin(lat0) ** 2
    meridian_m = _WGS84_A_M * (1.0 - _WGS84_E2) / w**1.5
    normal_m = _WGS84_A_M / math.sqrt(w)
    lat = model.origin_lat_deg + np.degrees(y_m / meridian_m)
    lon = model.origin_lon_deg + np.degrees(x_m / (normal_m * math.cos(lat0)))
    return lat, lon


def gnss_readings(traj: EgoTrajectory, model: GnssModel, rng: np.random.Generator) -> list[GnssFix]:
    """RTK fixes of the ego position (x east, y north in the local frame), with noise."""
    n = len(traj.t_s)
    noise = rng.normal(0.0, model.h_noise_m, (n, 2))
    lat, lon = enu_to_lat_lon(traj.x_m + noise[:, 0], traj.y_m + noise[:, 1], model)
    return [GnssFix(lat_deg=float(la), lon_deg=float(lo), alt_m=model.origin_alt_m,
                    fix_type=model.fix_type, h_accuracy_m=max(model.h_noise_m * 2.0, 0.01))
            for la, lo in zip(lat, lon, strict=True)]


def vehicle_state_readings(traj: EgoTrajectory) -> list[VehicleState]:
    """The vehicle's own view of its state (from the CAN bus: exact, no added noise)."""
    return [
        VehicleState(x_m=float(traj.x_m[i]), y_m=float(traj.y_m[i]), yaw_rad=float(traj.yaw_rad[i]),
                     speed_mps=float(traj.speed_mps[i]), accel_mps2=float(traj.accel_mps2[i]),
                     lat_accel_mps2=float(traj.lat_accel_mps2[i]),
                     steering_rad=float(traj.steering_rad[i]),
                     autonomy_engaged=bool(traj.autonomy_engaged[i]))
        for i in range(len(traj.t_s))
    ]
