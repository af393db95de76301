"""IMU, GNSS and vehicle-state readings derived from the ego trajectory.

Each ``*_readings`` function is pure and vectorised over the ``n`` steps of one scenario's
:class:`~simulator_harness.trajectory.Trajectory` ``(A, n)``, reading agent 0 (the ego); the IMU and
vehicle state need the signals a vehicle bus reports (yaw rate, lateral acceleration, steering,
autonomy engaged), which the demo drive and the scene sensors give. The noise comes from the
generator it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.payloads import GnssFix, ImuSample, VehicleState
from simulator_harness.errors import SensorConfigError
from simulator_harness.trajectory import EGO, Trajectory, require, unbatched

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


def imu_readings(traj: Trajectory, model: ImuModel, rng: np.random.Generator) -> list[ImuSample]:
    """Specific force (longitudinal, lateral, +g up) and angular rate (yaw rate on z), with noise."""
    unbatched(traj, "imu_readings")
    n = len(traj.t_s)
    lat = require(traj.lat_accel_mps2, "lat_accel_mps2")[EGO]
    accel = np.stack([traj.accel_mps2[EGO], lat, np.full(n, GRAVITY_MPS2)], axis=1)
    gyro = np.stack([np.zeros(n), np.zeros(n), require(traj.yaw_rate_radps, "yaw_rate_radps")[EGO]], axis=1)
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


def gnss_readings(traj: Trajectory, model: GnssModel, rng: np.random.Generator) -> list[GnssFix]:
    """RTK fixes of the ego position (x east, y north in the local frame), with noise."""
    unbatched(traj, "gnss_readings")
    n = len(traj.t_s)
    noise = rng.normal(0.0, model.h_noise_m, (n, 2))
    lat, lon = enu_to_lat_lon(traj.x_m[EGO] + noise[:, 0], traj.y_m[EGO] + noise[:, 1], model)
    return [GnssFix(lat_deg=float(la), lon_deg=float(lo), alt_m=model.origin_alt_m,
                    fix_type=model.fix_type, h_accuracy_m=max(model.h_noise_m * 2.0, 0.01))
            for la, lo in zip(lat, lon, strict=True)]


def vehicle_state_readings(traj: Trajectory) -> list[VehicleState]:
    """The vehicle's own view of its state (from the CAN bus: exact, no added noise)."""
    unbatched(traj, "vehicle_state_readings")
    x, y, yaw = traj.x_m[EGO], traj.y_m[EGO], traj.yaw_rad[EGO]
    speed, accel = traj.speed_mps[EGO], traj.accel_mps2[EGO]
    lat = require(traj.lat_accel_mps2, "lat_accel_mps2")[EGO]
    steering = require(traj.steering_rad, "steering_rad")[EGO]
    engaged = require(traj.autonomy_engaged, "autonomy_engaged")[EGO]
    return [
        VehicleState(x_m=float(x[i]), y_m=float(y[i]), yaw_rad=float(yaw[i]), speed_mps=float(speed[i]),
                     accel_mps2=float(accel[i]), lat_accel_mps2=float(lat[i]), steering_rad=float(steering[i]),
                     autonomy_engaged=bool(engaged[i]))
        for i in range(len(traj.t_s))
    ]
