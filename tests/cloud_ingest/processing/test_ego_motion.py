"""The ego track on known motions: 6-DoF poses interpolated and differentiated, the planar fallback,
the twist extrapolation, compensation of a pitching car's sweep, and the array-module switch."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cloud_ingest.calibration.geometry import array_module, motion_compensate, quat_to_matrix, se3, to_numpy
from cloud_ingest.errors import GeometryError
from cloud_ingest.processing import (
    EXTRAPOLATE_NS,
    MODEL_6DOF,
    MODEL_PLANAR,
    EgoTrack,
    compensate_sweep,
    correct_returns,
    quat_multiply,
    quat_to_rotvec,
    twist_motion,
)
from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, VehiclePose, VehicleState
from vehicle.replay.geodesy import matrix_to_quaternion

T0_NS = 1_700_000_000 * 1_000_000_000
RNG = np.random.default_rng(11)


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(N, 3, 3)`` of rotation vectors ``(N, 3)`` (written out here, independently)."""
    theta = np.linalg.norm(rotvec, axis=1)[:, None, None]
    k = rotvec / np.maximum(theta[:, :, 0], 1e-300)
    kx = np.zeros((len(k), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx -= np.swapaxes(kx, 1, 2)
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


def truth(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A drive with everything planar tracks leave out: ``world_R_vehicle (N, 3, 3)``, ``p (N, 3)``.

    8 m/s forward while turning at 0.2 rad/s, pitching ±2.3° at 2 rad/s and rolling ±1.7°, and
    climbing and dipping by ±0.3 m.
    """
    yaw, pitch, roll = 0.2 * t_s + 0.1, 0.04 * np.sin(2 * t_s), 0.03 * np.cos(1.5 * t_s)
    c, s = np.cos, np.sin
    rz = np.stack([c(yaw), -s(yaw), 0 * yaw, s(yaw), c(yaw), 0 * yaw, 0 * yaw, 0 * yaw, 1 + 0 * yaw], -1)
    ry = np.stack([c(pitch), 0 * t_s, s(pitch), 0 * t_s, 1 + 0 * t_s, 0 * t_s, -s(pitch), 0 * t_s, c(pitch)], -1)
    rx = np.stack([1 + 0 * t_s, 0 * t_s, 0 * t_s, 0 * t_s, c(roll), -s(roll), 0 * t_s, s(roll), c(roll)], -1)
    rot = rz.reshape(-1, 3, 3) @ ry.reshape(-1, 3, 3) @ rx.reshape(-1, 3, 3)
    return rot, np.stack([8 * t_s, 2 * np.sin(0.5 * t_s), 0.3 * np.sin(1.3 * t_s)], axis=-1)


def truth_twist(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame velocity and angular velocity ``(N, 3)`` of :func:`truth` (central differences, 1 µs)."""
    h = 1e-6
    (r0, p0), (r1, p1) = truth(t_s - h), truth(t_s + h)
    rot, _ = truth(t_s)
    v_body = np.einsum("nji,nj->ni", rot, (p1 - p0) / (2 * h))
    w = np.swapaxes(rot, 1, 2) @ (r1 - r0) / (2 * h)  # R^T dR/dt = [ω]x
    return v_body, np.stack([w[:, 2, 1], w[:, 0, 2], w[:, 1, 0]], axis=-1)


def pose_messages(t_s: np.ndarray) -> list[VehiclePose]:
    rot, pos = truth(t_s)
    return [VehiclePose(tuple(p.tolist()), tuple(q.tolist())) for p, q in zip(pos, matrix_to_quaternion(rot),
                                                                            strict=True)]


def ins_times(duration_s: float = 3.0) -> np.ndarray:
    """~170 Hz with jitter, and pairs of poses 5 ns apart as in the Argoverse 2 log."""
    t = np.cumsum(RNG.uniform(0.004, 0.008, int(duration_s * 170)))
    ns = T0_NS + np.round(t * 1e9).astype(np.int64)
    return np.sort(np.concatenate([ns, ns[::40] + 5]))


def test_six_dof_track_interpolates_the_poses_and_differentiates_the_twist() -> None:
    t_ns = ins_times()
    t_s = (t_ns - T0_NS) / 1e9
    order = RNG.permutation(len(t_ns))  # any order in; a repeated time keeps its first pose
    shuffled = [int(t_ns[i]) for i in order] + [int(t_ns[5])]
    messages = pose_messages(t_s)
    track = EgoTrack.from_poses(shuffled, [messages[i] for i in order] + [pose_messages(t_s[:1] + 9.0)[0]])
    assert track.model == MODEL_6DOF and track.t_ns.size == len(t_ns)
    # Between the samples: linear + SLERP against the true drive.
    mid = (t_ns[100:-100:7] + t_ns[101:-99:7]) // 2
    got = track.poses().at(mid)
    rot, pos = truth((mid - T0_NS) / 1e9)
    assert np.abs(got[:, :3, 3] - pos).max() < 1e-4
    assert np.abs(got[:, :3, :3] - rot).max() < 1e-5
    # Velocities over ±50 ms, in the vehicle frame, including the lateral, vertical, roll and pitch parts.
    inner = slice(40, -40)
    v_true, w_true = truth_twist(t_s[inner])
    np.testing.assert_allclose(track.velocity_mps[inner], v_true, atol=5e-3)
    np.testing.assert_allclose(track.angular_radps[inner], w_true, atol=1e-3)
    assert np.abs(w_true[:, 1]).max() > 0.05  # the pitch rate is really there
    v, w = track.motion_at(int(t_ns[500]) + 1_000_000)
    assert v == pytest.approx(truth_twist(np.array([t_s[500] + 1e-3]))[0][0], abs=5e-3)
    assert w == pytest.approx(truth_twist(np.array([t_s[500] + 1e-3]))[1][0], abs=1e-3)
    with pytest.raises(GeometryError, match="no usable pose"):
        EgoTrack.from_poses([], [])


def test_twist_motion_is_the_exponential_of_a_constant_body_twist() -> None:
    v, w = np.array([8.0, 0.3, -0.2]), np.array([0.05, -0.08, 0.2])
    # Integrate the twist in 100k small steps (first order, independent of the closed form).
    steps, dt = 100_000, 0.5 / 100_000
    rot, pos = np.eye(3), np.zeros(3)
    step_r = rodrigues((w * dt)[None])[0]
    for _ in range(steps // 1000):
        for _ in range(1000):
            pos = pos + rot @ (v * dt)
            rot = rot @ step_r
    q, t = twist_motion(v, w, np.array([0.5]))
    assert np.abs(quat_to_matrix(q)[0] - rot).max() < 1e-9 and np.abs(t[0] - pos).max() < 1e-4
    # The planar twist is the arc of radius v/ω; a zero turn is a straight line.
    q, t = twist_motion(np.array([10.0, 0, 0]), np.array([0, 0, 0.2]), np.array([1.0, -1.0]))
    np.testing.assert_allclose(t, [[50 * np.sin(0.2), 50 * (1 - np.cos(0.2)), 0],
                                   [-50 * np.sin(0.2), 50 * (1 - np.cos(0.2)), 0]], atol=1e-12)
    q, t = twist_motion(np.array([10.0, 0, 0]), np.zeros(3), np.array([0.3]))
    assert q[0].tolist() == [1.0, 0, 0, 0] and t[0] == pytest.approx([3.0, 0, 0])


def test_quaternion_helpers() -> None:
    a, b = RNG.normal(size=(500, 4)), RNG.normal(size=(500, 4))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)
    axes = RNG.normal(size=(500, 3))
    rotvec = axes / np.linalg.norm(axes, axis=1, keepdims=True) * RNG.uniform(0, 3.1, (500, 1))  # angles < π
    rotvec = np.concatenate([rotvec, [[1e-12, 0, 0], [0, 0, 0], [0, 3.14159, 0]]])
    back = quat_to_rotvec(matrix_to_quaternion(rodrigues(rotvec)))
    np.testing.assert_allclose(back, rotvec, atol=1e-9)


def test_six_dof_extrapolation_follows_the_end_twist() -> None:
    # A drive at one constant body twist: extrapolating the end twist is then exact.
    v, w = np.array([8.0, 0.1, 0.2]), np.array([0.02, -0.06, 0.15])
    t_ns = T0_NS + np.arange(0, 2_000_000_000, 10_000_000)
    q, t = twist_motion(v, w, (t_ns - T0_NS) / 1e9)
    track = EgoTrack.from_poses(t_ns.tolist(), [VehiclePose(tuple(p), tuple(r)) for p, r in zip(t.tolist(), q.tolist(),
                                                                                               strict=True)])
    late = int(t_ns[-1]) + 400_000_000
    q_late, t_late = twist_motion(v, w, np.array([(late - T0_NS) / 1e9]))
    got = track.poses().at([late])[0]
    assert np.abs(got[:3, 3] - t_late[0]).max() < 1e-3
    assert np.abs(got[:3, :3] - quat_to_matrix(q_late)[0]).max() < 1e-5
    assert track.bounds_ns() == (int(t_ns[0]) - EXTRAPOLATE_NS, int(t_ns[-1]) + EXTRAPOLATE_NS)


def spinning_sweep(sweep_t_ns: int, vehicle_T_lidar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 10 Hz spinning LiDAR over 100 ms on :func:`truth`: beams at -20..-3° hit the flat ground
    z = -1.8 m. Returns the raw sweep (each point in the LiDAR frame at its own time) and the true
    points in the vehicle frame at the sweep time."""
    n = 4000
    offsets = np.linspace(0, 99_000_000, n).astype(np.int64)
    azimuth = 2 * np.pi * offsets / 100_000_000
    elevation = np.radians(np.tile([-20.0, -12.0, -7.0, -4.5, -3.0], n // 5))
    rays = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1)
    rot, pos = truth((sweep_t_ns + offsets - T0_NS) / 1e9)
    world_T_lidar = se3(rot, pos) @ vehicle_T_lidar
    origin, dirs = world_T_lidar[:, :3, 3], np.einsum("nij,nj->ni", world_T_lidar[:, :3, :3], rays)
    hit = origin + ((-1.8 - origin[:, 2]) / dirs[:, 2])[:, None] * dirs
    raw = np.zeros(n, LIDAR_DTYPE)
    raw["x"], raw["y"], raw["z"] = (np.einsum("nji,nj->ni", world_T_lidar[:, :3, :3], hit - origin)).T
    raw["t_offset_ns"] = offsets
    r0, p0 = truth(np.array([(sweep_t_ns - T0_NS) / 1e9]))
    return raw, np.einsum("ji,nj->ni", r0[0], hit - p0[0])


def test_six_dof_compensation_undoes_a_pitching_cars_motion_where_planar_cannot() -> None:
    t_ns = T0_NS + np.arange(0, 3_000_000_000, 10_000_000)  # a 100 Hz INS
    t_s = (t_ns - T0_NS) / 1e9
    full = EgoTrack.from_poses(t_ns.tolist(), pose_messages(t_s))
    rot, pos = truth(t_s)
    states = [VehicleState(float(p[0]), float(p[1]), float(np.arctan2(r[1, 0], r[0, 0])), 8.0, 0, 0, 0, True)
              for p, r in zip(pos, rot, strict=True)]
    planar = EgoTrack.from_states(t_ns.tolist(), states)
    assert planar.model == MODEL_PLANAR and np.all(planar.translation_m[:, 2] == 0)
    vehicle_T_lidar = se3(quat_to_matrix([np.cos(0.02), 0, 0, np.sin(0.02)]), [1.2, 0.0, 1.8])
    sweep_t = T0_NS + 1_520_000_000  # pitching at the fastest (-4.6°/s), rolling at 2°/s, sinking at 0.16 m/s
    raw, want = spinning_sweep(sweep_t, vehicle_T_lidar)
    errors = {}
    for track in (full, planar):
        out, clamped = compensate_sweep(raw, sweep_t, track.poses(), vehicle_T_lidar, xp=np)
        got = np.stack([out["x"], out["y"], out["z"]], axis=-1).astype(np.float64)
        errors[track.model] = np.linalg.norm(got - want, axis=1)
        assert clamped == 0
    print(f"\nflat ground from a pitching car: 6-DoF max {errors[MODEL_6DOF].max() * 100:.2f} cm, "
          f"planar max {errors[MODEL_PLANAR].max() * 100:.2f} cm")
    assert errors[MODEL_6DOF].max() < 0.005  # float32 storage and 100 Hz interpolation
    # Planar misses a 0.5° turn about the tilted axes and 2 cm of sinking over 99 ms: ground out to 128 m.
    assert errors[MODEL_PLANAR].max() > 0.1


def test_radar_doppler_of_static_targets_is_zero_with_the_six_dof_twist() -> None:
    t_ns = T0_NS + np.arange(0, 3_000_000_000, 10_000_000)
    t_s = (t_ns - T0_NS) / 1e9
    full = EgoTrack.from_poses(t_ns.tolist(), pose_messages(t_s))
    rot, pos = truth(t_s)
    speed = np.linalg.norm(truth_twist(t_s)[0], axis=1)  # what a CAN speed would say
    planar = EgoTrack.from_states(t_ns.tolist(), [
        VehicleState(float(p[0]), float(p[1]), float(np.arctan2(r[1, 0], r[0, 0])), float(v), 0, 0, 0, True)
        for p, r, v in zip(pos, rot, speed, strict=True)])
    vehicle_T_radar = se3(quat_to_matrix([np.cos(-0.3), 0, 0, np.sin(-0.3)]), [3.6, -0.8, 0.6])
    t = T0_NS + 1_520_000_000
    v_body, w_body = (x[0] for x in truth_twist(np.array([1.52])))
    az, el = RNG.uniform(-1.0, 1.0, 50), RNG.uniform(-0.15, 0.15, 50)
    rays = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    v_radar = v_body + np.cross(w_body, vehicle_T_radar[:3, 3])  # the radar's velocity, vehicle frame
    returns = np.zeros(50, RADAR_DTYPE)
    returns["range_m"], returns["azimuth_rad"], returns["elevation_rad"] = 30.0, az, el
    returns["doppler_mps"] = -(rays @ vehicle_T_radar[:3, :3].T) @ v_radar  # static targets close in
    residual = {}
    for track in (full, planar):
        v, w = track.motion_at(t)
        residual[track.model] = float(np.abs(correct_returns(returns, vehicle_T_radar, v, w)["doppler_mps"]).max())
    print(f"\nradar, static targets after correction: 6-DoF max {residual[MODEL_6DOF]:.3f} m/s, "
          f"planar {residual[MODEL_PLANAR]:.3f} m/s")
    assert residual[MODEL_6DOF] < 0.02  # float32 Doppler and the ±50 ms difference
    assert residual[MODEL_PLANAR] > 0.1  # a planar twist has no side slip, climb, pitch or roll rate


def test_array_module_is_numpy_by_default_and_cupy_only_when_asked() -> None:
    assert array_module("numpy") is np
    with pytest.raises(GeometryError, match="unknown array module 'torch'"):
        array_module("torch")
    t_ns = T0_NS + np.arange(0, 1_000_000_000, 10_000_000)
    track = EgoTrack.from_poses(t_ns.tolist(), pose_messages((t_ns - T0_NS) / 1e9))
    raw, _ = spinning_sweep(T0_NS + 300_000_000, np.eye(4))
    ref, _ = compensate_sweep(raw, T0_NS + 300_000_000, track.poses(), np.eye(4))
    points = np.stack([raw["x"], raw["y"], raw["z"]], axis=-1).astype(np.float64)
    on_numpy = motion_compensate(points, raw["t_offset_ns"].astype(np.int64), T0_NS + 300_000_000, track.poses(),
                                 xp=np)
    assert isinstance(on_numpy, np.ndarray) and to_numpy(on_numpy) is on_numpy
    np.testing.assert_allclose(on_numpy, np.stack([ref["x"], ref["y"], ref["z"]], axis=-1), atol=1e-4)
    if importlib.util.find_spec("cupy") is None:  # the CPU machines: asking for CuPy is a clear error
        with pytest.raises(GeometryError, match="'cupy' cannot be imported"):
            array_module("cupy")
        return
    cp = array_module("cupy")  # a GPU machine with the gpu extra: the same numbers off the device
    out, _ = compensate_sweep(raw, T0_NS + 300_000_000, track.poses(), np.eye(4), xp=cp)
    for name in ("x", "y", "z"):
        np.testing.assert_allclose(out[name], ref[name], atol=1e-5)
