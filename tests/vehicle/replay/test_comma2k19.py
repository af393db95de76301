"""The comma2k19 reader on the real segment: counts, rates, clock, frames and units cross-checked
against each other (CAN vs IMU vs u-blox vs global pose), the filter, the geodesy, bad input."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from shared.messages import SensorMessage
from shared.payloads import POSE_ENCODING, GnssFix, ImuSample, VehiclePose, VehicleState, decode_small
from vehicle.config.tree import load_config
from vehicle.replay.comma2k19 import (
    Comma2k19Segment,
    ReplaySourceError,
    load_segment,
    pose_track,
    segment_messages,
    state_track,
)
from vehicle.replay.geodesy import (
    EnuFrame,
    ecef_to_geodetic,
    geodetic_to_ecef,
    matrix_to_quaternion,
    quaternion_to_matrix,
)
from vehicle.replay.publish import load_source
from vehicle.replay.smoothing import local_linear_fit
from vehicle.triggers.rules import TriggerEngine

SEG = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "comma2k19" / "seg40"
NS = 1_000_000_000


@pytest.fixture(scope="module")
def seg() -> Comma2k19Segment:
    return load_segment(SEG)


@pytest.fixture(scope="module")
def msgs(seg: Comma2k19Segment) -> list[SensorMessage]:
    return segment_messages(seg)


def test_every_sample_becomes_one_message_in_time_order_at_its_recorded_rate(seg: Comma2k19Segment, msgs: list[SensorMessage]) -> None:
    counts = Counter(m.topic for m in msgs)
    assert counts == {"imu": 6256, "vehicle_state": 4974, "gnss": 579, "pose": 1200}
    assert [m.t_sensor_ns for m in msgs] == sorted(m.t_sensor_ns for m in msgs)
    for topic, n in counts.items():
        assert [m.seq for m in msgs if m.topic == topic] == list(range(n))
    imu_t = np.array([m.t_sensor_ns for m in msgs if m.topic == "imu"]) / NS
    assert np.median(np.diff(imu_t)) == pytest.approx(0.00958, abs=1e-4)  # the EON's ~104 Hz IMU
    assert imu_t[-1] - imu_t[0] == pytest.approx(seg.imu_t_s[-1] - seg.imu_t_s[0], abs=1e-6)


def test_boot_time_maps_to_the_recording_utc_and_agrees_with_the_ublox_clock(seg: Comma2k19Segment, msgs: list[SensorMessage]) -> None:
    # Route 2018-08-02--08-34-47 (PDT, UTC-7), segment 40: it starts 40 min later, 16:14:47 UTC.
    first = datetime.fromtimestamp(msgs[0].t_sensor_ns / NS, UTC)
    assert first.strftime("%Y-%m-%d %H:%M") == "2018-08-02 16:14"
    gnss_ns = np.array(seg.vehicle_ns(seg.gnss_t_s), dtype=np.float64)
    latency_s = (gnss_ns - seg.gnss_ublox[:, 3] * 1e6) / NS  # log time - fix time (column 3 is ms)
    assert 0.1 < np.median(latency_s) < 0.3 and latency_s.min() > 0.0


def test_imu_is_published_x_forward_y_left_z_up(msgs: list[SensorMessage]) -> None:
    imu = [decode_small(m.payload, ImuSample) for m in msgs if m.topic == "imu"]
    acc = np.array([s.accel_mps2 for s in imu])
    assert acc[:, 2].mean() == pytest.approx(9.7, abs=0.2)  # specific force points up at rest
    assert np.linalg.norm(acc.mean(axis=0)) == pytest.approx(9.8, abs=0.2)


def test_can_acceleration_follows_the_imu_forward_axis(seg: Comma2k19Segment) -> None:
    track = state_track(seg)
    imu_fwd, _ = local_linear_fit(seg.imu_t_s, seg.accel_frd_mps2[:, 0], 0.5)
    imu_at_can = np.interp(track.t_s, seg.imu_t_s, imu_fwd)
    inner = slice(100, -100)
    # Same sign and shape: the IMU also sees gravity through the mount's pitch (a constant offset).
    assert np.corrcoef(imu_at_can[inner], track.accel_mps2[inner])[0, 1] > 0.8


def test_speed_pose_and_gnss_agree_with_each_other(seg: Comma2k19Segment, msgs: list[SensorMessage]) -> None:
    states = [decode_small(m.payload, VehicleState) for m in msgs if m.topic == "vehicle_state"]
    fixes = [decode_small(m.payload, GnssFix) for m in msgs if m.topic == "gnss"]
    assert not any(s.autonomy_engaged for s in states)
    assert (states[0].x_m, states[0].y_m) == pytest.approx((0.0, 0.0), abs=1.0)
    t = seg.speed_t_s
    travelled = np.sum(np.diff(t) * seg.speed_mps[1:])
    xy = np.array([(s.x_m, s.y_m) for s in states])
    assert np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)) == pytest.approx(travelled, rel=0.02)
    # Heading: ENU yaw is measured from east; the u-blox bearing from north, clockwise.
    yaw_deg = np.degrees(np.array([s.yaw_rad for s in states]))
    bearing = np.interp(t, seg.gnss_t_s, seg.gnss_ublox[:, 5])
    assert np.median(np.abs((90.0 - bearing) - yaw_deg)) < 2.0
    ublox_speed = np.interp(seg.gnss_t_s, t, seg.speed_mps)
    assert np.median(np.abs(seg.gnss_ublox[:, 2] - ublox_speed)) < 0.3
    # The u-blox fix lies within a few metres of the (Laika-refined) global pose.
    frame = EnuFrame(seg.frame_ecef_m[0])
    pose_enu = frame.positions(seg.frame_ecef_m)
    fix_boot_s = seg.gnss_ublox[:, 3] / 1e3 - seg.boot_to_unix_ns / NS
    fix_enu = frame.positions(geodetic_to_ecef([f.lat_deg for f in fixes], [f.lon_deg for f in fixes],
                                               [f.alt_m for f in fixes]))
    pose_at_fix = np.stack([np.interp(fix_boot_s, seg.frame_t_s, pose_enu[:, i]) for i in range(3)], axis=1)
    assert np.max(np.linalg.norm((fix_enu - pose_at_fix)[:, :2], axis=1)) < 5.0  # measured: 2.2 m
    assert np.median(np.abs(fix_enu[:, 2] - pose_at_fix[:, 2])) < 3.0  # both are ellipsoidal heights
    assert all(f.fix_type == 1 and math.isnan(f.h_accuracy_m) for f in fixes)


def test_pose_stream_is_the_global_pose_in_the_state_frame_and_agrees_with_gravity(
        seg: Comma2k19Segment, msgs: list[SensorMessage]) -> None:
    poses = [m for m in msgs if m.topic == "pose"]
    assert {m.encoding for m in poses} == {POSE_ENCODING} and len(poses) == len(seg.frame_t_s)  # 20 Hz, one a frame
    assert np.median(np.diff([m.t_sensor_ns for m in poses])) / NS == pytest.approx(0.05, abs=1e-3)
    decoded = [decode_small(m.payload, VehiclePose) for m in poses]
    pos = np.array([p.position_m for p in decoded])
    rot = quaternion_to_matrix(np.array([p.rotation_wxyz for p in decoded]))
    # The same local ENU frame as vehicle_state: positions and yaw match the planar states.
    frame = EnuFrame(seg.frame_ecef_m[0])
    np.testing.assert_allclose(pos, frame.positions(seg.frame_ecef_m), atol=1e-6)
    states = state_track(seg)
    yaw = np.arctan2(rot[:, 1, 0], rot[:, 0, 0])
    state_yaw = np.interp(seg.frame_t_s, states.t_s, np.unwrap(states.yaw_rad))
    assert np.abs(np.angle(np.exp(1j * (yaw - state_yaw)))).max() < 1e-3
    # What the planar state drops: the road climbs and falls by metres and the car pitches by degrees.
    pitch = np.degrees(-np.arcsin(rot[:, 2, 0]))
    assert np.ptp(pos[:, 2]) > 10.0 and pitch.max() > 3.0
    # Roll and pitch checked against the IMU, an independent sensor: the specific force turned into
    # ENU by the pose, minus the acceleration of the pose's own position, is gravity (straight up).
    # Both smoothed over ±0.5 s: a 20 Hz position differentiated twice is noise otherwise.
    f_body = seg.accel_frd_mps2 * [1.0, -1.0, -1.0]  # FRD → x forward, y left, z up
    f_smooth = np.stack([local_linear_fit(seg.imu_t_s, f_body[:, i], 0.5)[0] for i in range(3)], axis=1)
    f_at_pose = np.stack([np.interp(seg.frame_t_s, seg.imu_t_s, f_smooth[:, i]) for i in range(3)], axis=1)
    accel = np.stack([local_linear_fit(seg.frame_t_s, local_linear_fit(seg.frame_t_s, pos[:, i], 0.5)[1], 0.5)[1]
                      for i in range(3)], axis=1)

    def tilt_deg(rotations: np.ndarray) -> np.ndarray:
        up = np.einsum("nij,nj->ni", rotations, f_at_pose) - accel
        return np.asarray(np.degrees(np.arccos(up[:, 2] / np.linalg.norm(up, axis=1))))

    assert np.median(tilt_deg(rot)) < 1.0 and np.percentile(tilt_deg(rot), 95) < 2.0  # measured: 0.70°, 1.18°
    assert np.median(tilt_deg(np.swapaxes(rot, 1, 2))) > 5.0  # the inverse rotation would be far off (7.8°)
    # matrix_to_quaternion, used to build the stream, inverts quaternion_to_matrix (half turns too).
    q = pose_track(seg).rotation_wxyz
    np.testing.assert_allclose(matrix_to_quaternion(quaternion_to_matrix(q)), q, atol=1e-12)
    for half_turn in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(half_turn))[0], half_turn, atol=1e-12)


def test_hard_brake_rule_sees_the_real_deceleration_once(msgs: list[SensorMessage]) -> None:
    # Strongest deceleration: the last 3.5 s (16.8 → 11.2 m/s), 1.6 m/s² crossed at 58.4 s; the
    # only other braking (30.0-33.5 s, 16.8 → 13.7 m/s) peaks at 1.14 m/s². See test_replay.py.
    cfg = load_config(None, {"vehicle_id": "v", "triggers": {"hb": {
        "kind": "hard_brake", "decel_mps2": 1.6, "min_duration_s": 0.3, "cooldown_s": 0.0}}})
    engine = TriggerEngine(cfg.triggers, cfg.topics)
    t0 = msgs[0].t_sensor_ns
    fired = [e for m in msgs if m.topic == "vehicle_state" for e in engine.observe(m.t_sensor_ns, m.topic, m.payload)]
    assert [round((e.t_ns - t0) / NS, 1) for e in fired] == [58.7]


def test_local_linear_fit_is_exact_on_lines_and_zero_phase_on_parabolas() -> None:
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.002, 0.02, 2000))
    level, slope = local_linear_fit(t, 3.0 - 2.0 * t, 0.5)
    assert np.allclose(slope, -2.0) and np.allclose(level, 3.0 - 2.0 * t)
    _, slope = local_linear_fit(t, t**2, 0.5)
    inner = (t > t[0] + 0.5) & (t < t[-1] - 0.5)
    # Symmetric windows on irregular samples are only nearly centred: within 5 % of the true 2t.
    assert np.allclose(slope[inner], 2 * t[inner], rtol=0.05)
    noisy = 10.0 + rng.normal(0, 0.2, t.size)
    _, slope = local_linear_fit(t, noisy, 0.5)
    assert np.std(slope[inner]) < 0.1  # vs ~25 m/s² for a plain difference of the same noise


def test_geodesy_round_trips_and_enu_points_north() -> None:
    ecef = geodetic_to_ecef([37.721, -33.9, 89.9], [-122.4723, 151.2, 10.0], [31.6, -20.0, 1000.0])
    lat, lon, h = ecef_to_geodetic(ecef)
    back = geodetic_to_ecef(lat, lon, h)
    assert np.max(np.abs(back - ecef)) < 1e-6
    frame = EnuFrame(ecef[0])
    north = geodetic_to_ecef(37.721 + 100.0 / 111_000, -122.4723, 31.6)
    east, n_m, up = frame.positions(north)[0]
    assert abs(east) < 0.01 and n_m == pytest.approx(100.0, rel=0.01) and abs(up) < 0.01


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "seg"
    shutil.copytree(SEG, dst)
    return dst


def test_bad_segments_raise_a_typed_error_naming_the_array(tmp_path: Path) -> None:
    with pytest.raises(ReplaySourceError, match="not a comma2k19 segment"):
        load_segment(tmp_path)
    seg = _copy(tmp_path)
    with open(seg / "processed_log/IMU/gyro/value", "wb") as f:
        np.save(f, np.zeros((10, 2)))
    with pytest.raises(ReplaySourceError, match=r"IMU/gyro/value has shape \(10, 2\)"):
        load_segment(seg)
    shutil.rmtree(seg)
    seg = _copy(tmp_path)
    t = np.load(SEG / "processed_log/CAN/speed/t")
    with open(seg / "processed_log/CAN/speed/t", "wb") as f:
        np.save(f, t[::-1])
    with pytest.raises(ReplaySourceError, match="CAN/speed/t is empty or not strictly increasing"):
        load_segment(seg)
    (seg / "global_pose/frame_positions").write_bytes(b"not numpy")
    with pytest.raises(ReplaySourceError, match="cannot read global_pose/frame_positions"):
        load_segment(seg)


def test_source_specs_are_checked() -> None:
    with pytest.raises(ReplaySourceError, match="KIND:PATH"):
        load_source(str(SEG))
    with pytest.raises(ReplaySourceError, match="unknown source kind 'rosbag'"):
        load_source("rosbag:/x")
    assert len(load_source(f"comma2k19:{SEG}")) == 13009
