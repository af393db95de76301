"""IMU, GNSS and vehicle state follow the drive profile; the rig's calibration is consistent."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from shared.calibration import CalibrationBundle
from shared.payloads import GnssFix, ImuSample, VehicleState, decode_small
from simulator_harness.drive import DriveParams, ego_trajectory
from simulator_harness.sensors import (
    GNSS_SPEC,
    IMU_SPEC,
    VEHICLE_STATE_SPEC,
    GnssModel,
    GnssSensor,
    ImuModel,
    ImuSensor,
    VehicleStateSensor,
    demo_calibration,
    demo_rig,
    enu_to_lat_lon,
    frame_count,
    imu_readings,
)
from simulator_harness.sensors.motion import GRAVITY_MPS2
from simulator_harness.trajectory import EGO

T_S = np.arange(0, 14 * 200) / 200.0
_G = TypeVar("_G", bound=np.generic)

def ego(series: npt.NDArray[_G] | None) -> npt.NDArray[_G]:
    """The ego's row of a drive trajectory field ``(1, n)``."""
    assert series is not None
    return series[EGO]


def test_imu_matches_the_profile_within_its_noise() -> None:
    params, model = DriveParams(), ImuModel()
    traj = ego_trajectory(params, T_S)
    samples = imu_readings(traj, model, np.random.default_rng(0))
    accel = np.array([s.accel_mps2 for s in samples])
    gyro = np.array([s.gyro_radps for s in samples])
    residual = accel - np.stack([ego(traj.accel_mps2), ego(traj.lat_accel_mps2), np.full(len(T_S), GRAVITY_MPS2)],
                                1)
    assert np.abs(residual.mean(axis=0)).max() < 0.01
    np.testing.assert_allclose(residual.std(axis=0), model.accel_noise_mps2, rtol=0.1)
    gyro_res = gyro[:, 2] - ego(traj.yaw_rate_radps)
    np.testing.assert_allclose(gyro_res.std(), model.gyro_noise_radps, rtol=0.1)
    braking = (T_S > 9.5) & (T_S < 11.0)
    assert accel[braking, 0].mean() == pytest.approx(-6.0, abs=0.02)


def test_imu_sensor_is_deterministic_whatever_the_order() -> None:
    params = DriveParams()
    a = ImuSensor(params, ImuModel(), IMU_SPEC, seed=1)
    b = ImuSensor(params, ImuModel(), IMU_SPEC, seed=1)
    forward = [bytes(a.capture(k)[0].payload) for k in range(0, 600, 7)]
    backward = [bytes(b.capture(k)[0].payload) for k in reversed(range(0, 600, 7))][::-1]
    assert forward == backward
    sample = decode_small(a.capture(2000)[0].payload, ImuSample)  # t = 10 s: braking hard
    assert sample.accel_mps2[0] == pytest.approx(-6.0, abs=0.3)
    assert sample.accel_mps2[2] == pytest.approx(GRAVITY_MPS2, abs=0.3)


def test_gnss_tracks_the_ego_position() -> None:
    params, model = DriveParams(), GnssModel()
    sensor = GnssSensor(params, model, GNSS_SPEC, seed=0)
    first = decode_small(sensor.capture(0)[0].payload, GnssFix)
    last = decode_small(sensor.capture(139)[0].payload, GnssFix)
    assert first.fix_type == 4
    travelled = float(ego_trajectory(params, 13.9).x_m[EGO, 0])
    # x is east: the latitude barely moves, the longitude grows by the distance travelled.
    _lat, lon = enu_to_lat_lon(np.array([travelled]), np.array([0.0]), model)
    assert last.lon_deg - first.lon_deg == pytest.approx(lon[0] - model.origin_lon_deg, rel=1e-3)
    metres_per_deg_lon = 111_320.0 * np.cos(np.radians(model.origin_lat_deg))
    assert (last.lon_deg - first.lon_deg) * metres_per_deg_lon == pytest.approx(travelled, rel=5e-3)
    assert abs(last.lat_deg - first.lat_deg) * 111_000 < 0.5


def test_vehicle_state_is_the_exact_profile() -> None:
    params = DriveParams()
    sensor = VehicleStateSensor(params, VEHICLE_STATE_SPEC)
    for k in (0, 460, 470, 600):
        state = decode_small(sensor.capture(k)[0].payload, VehicleState)
        tr = ego_trajectory(params, k / 50.0)
        assert state.speed_mps == pytest.approx(float(ego(tr.speed_mps)[0]))
        assert state.accel_mps2 == pytest.approx(float(ego(tr.accel_mps2)[0]))
        assert state.x_m == pytest.approx(float(ego(tr.x_m)[0]))
        assert state.autonomy_engaged
    assert decode_small(sensor.capture(480)[0].payload, VehicleState).accel_mps2 == pytest.approx(-6.0)


def test_demo_rig_topics_rates_and_counts() -> None:
    rig = demo_rig(DriveParams(), width_px=320, height_px=180)
    assert {s.spec.topic: s.spec.rate_hz for s in rig} == {
        "camera/front": 30.0, "lidar/top": 10.0, "imu": 200.0, "vehicle_state": 50.0, "gnss": 10.0}
    assert {s.spec.topic: s.spec.encoding for s in rig} == {
        "camera/front": "h265", "lidar/top": "lidar_points_v1", "imu": "imu_v1",
        "vehicle_state": "vehicle_state_v1", "gnss": "gnss_v1"}
    assert frame_count(30.0, 14.0) == 420 and frame_count(200.0, 2.0) == 400
    assert frame_count(30.0, 0.05) == 2


def test_demo_calibration_maps_the_optical_axis_forward() -> None:
    bundle = CalibrationBundle.decode(demo_calibration("demo-car", 0).encode())
    cam = bundle.cameras[0]
    assert (cam.width_px, cam.height_px) == (640, 360) and cam.fx == pytest.approx(457.0, abs=1.0)
    w, x, y, z = next(e for e in bundle.extrinsics if e.sensor_id == cam.sensor_id).rotation_wxyz
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
    np.testing.assert_allclose(rot @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # optical z → forward
    np.testing.assert_allclose(rot @ [1, 0, 0], [0, -1, 0], atol=1e-12)  # optical x → right
    np.testing.assert_allclose(rot @ [0, 1, 0], [0, 0, -1], atol=1e-12)  # optical y → down
