"""Geometry on synthetic cases with known answers: rotations, poses, projection, compensation, radar."""

from __future__ import annotations

import numpy as np
import pytest

from cloud_ingest.calibration.geometry import (
    EgoPoses,
    matrix_to_quat,
    motion_compensate,
    project_points,
    quat_slerp,
    quat_to_matrix,
    radar_directions,
    radar_ego_velocity_correct,
    se3,
    se3_compose,
    se3_inverse,
    to_vehicle_clock,
    transform_points,
)
from cloud_ingest.errors import GeometryError
from shared.calibration import CalibrationBundle, CameraIntrinsics
from shared.payloads import RADAR_DTYPE

RNG = np.random.default_rng(7)
# Camera frame (x right, y down, z forward) expressed in the vehicle frame (x fwd, y left, z up).
OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def yaw_quat(yaw_rad: float) -> np.ndarray:
    return np.array([np.cos(yaw_rad / 2), 0.0, 0.0, np.sin(yaw_rad / 2)])


def random_quats(n: int) -> np.ndarray:
    q = RNG.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def test_quaternion_matrix_round_trip_including_half_turns() -> None:
    q = random_quats(2000)
    rotations = quat_to_matrix(q)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, 1, 2), np.broadcast_to(np.eye(3), (2000, 3, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(matrix_to_quat(rotations), q, atol=1e-12)
    for half_turn in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):
        np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(half_turn)), half_turn, atol=1e-12)
    assert quat_to_matrix(yaw_quat(np.pi / 2)) @ [1.0, 0, 0] == pytest.approx([0.0, 1.0, 0.0])
    assert matrix_to_quat(OPTICAL) @ [1, 0, 0, 0] > 0  # canonical w >= 0


def test_non_rotations_are_refused() -> None:
    with pytest.raises(GeometryError, match="reflection"):
        matrix_to_quat(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(GeometryError, match="not a rotation"):
        matrix_to_quat(np.eye(3) * 1.1)
    with pytest.raises(GeometryError, match="zero norm"):
        quat_to_matrix([0.0, 0.0, 0.0, 0.0])
    with pytest.raises(GeometryError, match="shape"):
        quat_to_matrix([1.0, 0.0, 0.0])
    with pytest.raises(GeometryError, match="NaN"):
        transform_points(np.eye(4), [[np.nan, 0.0, 0.0]])


def test_se3_inverse_compose_and_transform() -> None:
    a = se3(quat_to_matrix(random_quats(1)[0]), RNG.normal(size=3))
    b = se3(quat_to_matrix(random_quats(1)[0]), RNG.normal(size=3))
    np.testing.assert_allclose(se3_compose(a, se3_inverse(a)), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(se3_inverse(se3_compose(a, b)), se3_compose(se3_inverse(b), se3_inverse(a)),
                               atol=1e-12)
    pts = RNG.normal(size=(50, 3))
    np.testing.assert_allclose(transform_points(se3_compose(a, b), pts),
                               transform_points(a, transform_points(b, pts)), atol=1e-12)
    moved = transform_points(se3(quat_to_matrix(yaw_quat(np.pi)), [1.0, 2.0, 3.0]), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(moved, [[0.0, 2.0, 3.0]], atol=1e-12)


def test_slerp_moves_at_constant_angular_rate_along_the_short_arc() -> None:
    alphas = np.linspace(0.0, 1.0, 11)
    out = quat_slerp(yaw_quat(0.0), yaw_quat(1.2), alphas)
    np.testing.assert_allclose(out, np.stack([yaw_quat(1.2 * a) for a in alphas]), atol=1e-12)
    # -q is the same rotation: interpolation must take the short way, not the 2π - θ one.
    np.testing.assert_allclose(quat_slerp(yaw_quat(0.0), -yaw_quat(0.4), 0.5), yaw_quat(0.2), atol=1e-12)
    np.testing.assert_allclose(quat_slerp(yaw_quat(0.3), yaw_quat(0.3 + 1e-9), 0.5), yaw_quat(0.3), atol=1e-9)


CAMERA = CameraIntrinsics("cam", 1000, 600, 800.0, 810.0, 500.0, 300.0, "none")


def test_projection_pixels_depth_and_bounds() -> None:
    vehicle_T_cam = se3(OPTICAL, [2.0, 0.0, 1.5])
    pts = np.array([[12.0, 0.0, 1.5],       # straight ahead, 10 m from the camera
                    [12.0, -1.0, 1.0],      # right and below: u > cx, v > cy
                    [-5.0, 0.0, 1.5],       # behind the camera
                    [3.0, 10.0, 1.5],       # far to the left: in front, outside the image
                    [2.05, 0.0, 1.5]])      # closer than min_depth_m
    proj = project_points(pts, CAMERA, vehicle_T_cam)
    np.testing.assert_allclose(proj.depth_m, [10.0, 10.0, -7.0, 1.0, 0.05])
    np.testing.assert_allclose(proj.uv_px[0], [500.0, 300.0])
    np.testing.assert_allclose(proj.uv_px[1], [500.0 + 800.0 * 0.1, 300.0 + 810.0 * 0.05])
    assert proj.in_bounds.tolist() == [True, True, False, False, False]
    assert np.isnan(proj.uv_px[2]).all()


def test_plumb_bob_distortion_and_the_fold_over_guard() -> None:
    cam = CameraIntrinsics("cam", 1000, 600, 800.0, 800.0, 500.0, 300.0, "plumb_bob",
                           (-0.3, 0.1, 0.001, -0.002, 0.0))
    x, y = 0.2, -0.1
    r2 = x * x + y * y
    radial = 1 - 0.3 * r2 + 0.1 * r2 * r2
    xd = x * radial + 2 * 0.001 * x * y - 0.002 * (r2 + 2 * x * x)
    yd = y * radial + 0.001 * (r2 + 2 * y * y) + 2 * -0.002 * x * y
    proj = project_points([[x * 5, y * 5, 5.0]], cam, np.eye(4))
    np.testing.assert_allclose(proj.uv_px[0], [500 + 800 * xd, 300 + 800 * yd], atol=1e-9)
    # With k1 = -0.5 the model folds back beyond r² = 2/3: a ray at x/z = 1.3 (52°) would land at
    # u = 661 px, inside the image, although the lens cannot see it. It must be out of bounds,
    # while a ray at x/z = 0.6, before the fold, stays visible.
    folding = CameraIntrinsics("cam", 1000, 600, 800.0, 800.0, 500.0, 300.0, "plumb_bob", (-0.5,))
    rays = project_points([[1.3, 0.0, 1.0], [0.6, 0.0, 1.0]], folding, np.eye(4))
    assert rays.uv_px[:, 0] == pytest.approx([500 + 800 * 1.3 * (1 - 0.5 * 1.69), 500 + 800 * 0.6 * 0.82])
    assert rays.in_bounds.tolist() == [False, True]
    with pytest.raises(GeometryError, match="unsupported distortion"):
        project_points([[0.0, 0.0, 5.0]], CameraIntrinsics("c", 10, 10, 1.0, 1.0, 5.0, 5.0, "equidistant"),
                       np.eye(4))


def test_ego_pose_track_validation() -> None:
    q = np.tile(yaw_quat(0.0), (3, 1))
    with pytest.raises(GeometryError, match="strictly increasing"):
        EgoPoses(np.array([0, 10, 10]), q, np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="integer"):
        EgoPoses(np.array([0.0, 1.0, 2.0]), q, np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="3 pose times but"):
        EgoPoses(np.array([0, 1, 2]), q[:2], np.zeros((3, 3)))
    poses = EgoPoses(np.array([0, 10, 20]), q, np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="outside the ego-pose track"):
        poses.at([25])
    with pytest.raises(GeometryError, match="integer nanoseconds"):
        poses.at([5.0])


def straight_drive(speed_mps: float, yaw_rate_radps: float, step_ns: int, n: int) -> EgoPoses:
    t_ns = np.arange(n, dtype=np.int64) * step_ns
    t_s = t_ns / 1e9
    yaw = yaw_rate_radps * t_s
    pos = np.stack([speed_mps * t_s, np.zeros(n), np.zeros(n)], axis=1)
    return EgoPoses(t_ns, np.stack([yaw_quat(a) for a in yaw]), pos)


def test_motion_compensation_straightens_a_static_wall() -> None:
    speed, sweep_ns = 20.0, 100_000_000
    poses = straight_drive(speed, 0.0, 10_000_000, 21)  # poses every 10 ms over 200 ms
    lidar_at = se3(np.eye(3), [1.0, 0.0, 1.8])  # vehicle_T_lidar
    # A static wall: the plane x = 30 m in the world, scanned left to right over one 100 ms sweep.
    n = 500
    offsets = np.linspace(0, sweep_ns, n).astype(np.int64)
    sweep_t = 50_000_000
    wall_world = np.stack([np.full(n, 30.0), np.linspace(-8, 8, n), np.full(n, 0.5)], axis=1)
    world_T_vehicle = poses.at(sweep_t + offsets)
    # What the LiDAR measured: each point in the sensor frame at its own firing time.
    sensor_T_world = se3_inverse(world_T_vehicle @ lidar_at)
    measured = np.einsum("nij,nj->ni", sensor_T_world[:, :3, :3], wall_world) + sensor_T_world[:, :3, 3]
    naive = transform_points(lidar_at, measured)
    assert np.ptp(naive[:, 0]) > 1.9  # 20 m/s × 0.1 s: the raw wall is a 2 m slant
    fixed = motion_compensate(measured, offsets, sweep_t, poses, vehicle_T_sensor=lidar_at)
    # In the vehicle frame at the sweep time the wall is flat again, at 30 m minus the distance driven.
    np.testing.assert_allclose(fixed[:, 0], 30.0 - speed * sweep_t / 1e9, atol=1e-6)
    np.testing.assert_allclose(fixed[:, 1], wall_world[:, 1], atol=1e-6)
    at_end = motion_compensate(measured, offsets, sweep_t, poses, vehicle_T_sensor=lidar_at,
                               ref_t_ns=sweep_t + sweep_ns)
    np.testing.assert_allclose(at_end[:, 0], 30.0 - speed * (sweep_t + sweep_ns) / 1e9, atol=1e-6)


def test_motion_compensation_while_turning_uses_slerp() -> None:
    yaw_rate = 0.5  # rad/s, turning in place: rotation only, which SLERP reproduces exactly
    poses = straight_drive(0.0, yaw_rate, 20_000_000, 11)
    offsets = np.array([0, 50_000_000, 100_000_000, 150_000_000], dtype=np.int64)
    world = np.array([[20.0, 0.0, 0.0]] * 4)
    measured = np.stack([transform_points(se3_inverse(poses.at([t])[0]), world[:1])[0] for t in offsets])
    fixed = motion_compensate(measured, offsets, 0, poses)
    np.testing.assert_allclose(fixed, world, atol=1e-9)
    assert np.linalg.norm(measured[-1] - world[-1]) > 1.4  # 0.075 rad × 20 m uncorrected
    with pytest.raises(GeometryError, match="t_offset_ns must be 4 integers"):
        motion_compensate(measured, offsets.astype(float), 0, poses)


def radar_returns(points_radar: np.ndarray, doppler: np.ndarray) -> np.ndarray:
    out = np.zeros(len(points_radar), dtype=RADAR_DTYPE)
    rng = np.linalg.norm(points_radar, axis=1)
    out["range_m"] = rng
    out["azimuth_rad"] = np.arctan2(points_radar[:, 1], points_radar[:, 0])
    out["elevation_rad"] = np.arcsin(points_radar[:, 2] / rng)
    out["doppler_mps"] = doppler
    return out


@pytest.mark.parametrize("trial", range(5))
def test_radar_static_targets_read_zero_for_any_ego_motion(trial: int) -> None:
    vehicle_T_radar = se3(quat_to_matrix(yaw_quat(RNG.uniform(-1, 1))), [3.6, RNG.uniform(-1, 1), 0.5])
    v_ego = np.array([RNG.uniform(-5, 35), RNG.uniform(-2, 2), 0.0])
    omega = np.array([0.0, 0.0, RNG.uniform(-0.8, 0.8)])
    targets = np.stack([RNG.uniform(5, 80, 200), RNG.uniform(-30, 30, 200), RNG.uniform(-1, 2, 200)], axis=1)
    sensor_pos = vehicle_T_radar[:3, 3]
    rays = (targets - sensor_pos) / np.linalg.norm(targets - sensor_pos, axis=1, keepdims=True)
    v_sensor = v_ego + np.cross(omega, sensor_pos)
    target_v = np.zeros((200, 3))
    target_v[:50] = RNG.uniform(-15, 15, size=(50, 3))  # a quarter of them move
    doppler = np.einsum("ij,ij->i", target_v - v_sensor, rays)
    returns = radar_returns(transform_points(se3_inverse(vehicle_T_radar), targets), doppler)
    corrected = radar_ego_velocity_correct(returns, vehicle_T_radar, v_ego, omega)
    np.testing.assert_allclose(corrected[50:], 0.0, atol=2e-4)  # float32 Doppler / angles
    np.testing.assert_allclose(corrected[:50], np.einsum("ij,ij->i", target_v[:50], rays[:50]), atol=2e-4)
    without_rotation = radar_ego_velocity_correct(returns, vehicle_T_radar, v_ego)
    if abs(omega[2]) > 0.05:  # the lever arm ω × r matters: ignoring it leaves residuals
        assert np.abs(without_rotation[50:]).max() > 0.05
    np.testing.assert_allclose(np.linalg.norm(radar_directions(returns["azimuth_rad"], returns["elevation_rad"]),
                                              axis=1), 1.0, atol=1e-12)


def test_temporal_offsets_shift_timestamps_onto_the_vehicle_clock() -> None:
    bundle = CalibrationBundle("veh", "v1", 0, None, time_offsets_ns={"cam_front": -12_500_000})
    stamps = np.array([1_700_000_000_000_000_000, 1_700_000_000_033_000_000], dtype=np.int64)
    assert to_vehicle_clock(stamps, bundle, "cam_front").tolist() == [1_699_999_999_987_500_000,
                                                                      1_700_000_000_020_500_000]
    assert to_vehicle_clock(stamps, bundle, "lidar").tolist() == stamps.tolist()
    with pytest.raises(GeometryError, match="integer nanoseconds"):
        to_vehicle_clock(stamps.astype(np.float64), bundle, "cam_front")
