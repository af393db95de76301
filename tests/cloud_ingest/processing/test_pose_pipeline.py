"""A snapshot with a ``pose_v1`` channel through the real ingest: the processed report says the
6-DoF poses were used, and the calibrated sweeps show it; without the channel (or with only junk
in it) the planar vehicle states are used and the report says so. Inputs: the Argoverse 2 log
(real 170 Hz poses, its two sweeps made raw again, see test_pose_real.py) and the comma2k19
replay's own messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cloud_ingest.calibration.checks import extrinsics_from_matrix
from cloud_ingest.calibration.geometry import EgoPoses, quat_to_matrix, se3, se3_inverse
from cloud_ingest.processing import MODEL_6DOF, MODEL_PLANAR, calibrated_key, report_key
from shared.calibration import CalibrationBundle
from shared.messages import SensorMessage
from shared.payloads import (
    LIDAR_DTYPE,
    POSE_ENCODING,
    VehiclePose,
    decode_points,
    decode_small,
    encode_small,
)
from shared.segment import Segment
from shared.snapshot import SnapshotReader
from tests.cloud_ingest.conftest import write_snapshot
from tests.cloud_ingest.processing.av2_log import planar_states, pose_samples, sweeps
from tests.cloud_ingest.processing.test_apply_calibration import Direct
from vehicle.replay.comma2k19 import load_segment, segment_messages

COMMA = Path(__file__).parents[2] / "fixtures" / "real" / "comma2k19" / "seg40"
NS = 1_000_000_000


def bundle(vehicle: str, sensor: str, valid_from_ns: int, vehicle_T_lidar: np.ndarray) -> CalibrationBundle:
    return CalibrationBundle(vehicle, "rig-6dof", valid_from_ns, None, (),
                             (extrinsics_from_matrix(sensor, vehicle_T_lidar),), {})


def calibrated_sweeps(env: Direct, seg: Segment, topic: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    key = calibrated_key(seg.segment_id, seg.start_ns)
    assert [r.object_key for r in seg.lidar_sweeps] == [key]
    with SnapshotReader(env.store.path(key)) as reader:
        out = [decode_points(m.payload, LIDAR_DTYPE) for _, m in reader.messages([topic])]
    report = json.loads(env.store.read_bytes(report_key(seg.segment_id, seg.start_ns)))
    return [np.stack([p["x"], p["y"], p["z"]], axis=1).astype(np.float64) for p in out], report


def av2_messages(with_poses: bool, with_states: bool) -> list[SensorMessage]:
    times, poses = pose_samples()
    msgs = []
    if with_poses:
        msgs += [SensorMessage("pose", "av2/ins", t, 0, k, POSE_ENCODING, encode_small(p))
                 for k, (t, p) in enumerate(zip(times, poses, strict=True))]
        msgs.append(SensorMessage("pose", "av2/ins", times[100] + 1, 0, len(times), POSE_ENCODING, b"\x81junk"))
    if with_states:
        msgs += [SensorMessage("vehicle_state", "av2/can", t, 0, k, "vehicle_state_v1", encode_small(s))
                 for k, (t, s) in enumerate(zip(times, planar_states(times, poses), strict=True))]
    track = EgoPoses(np.asarray(times), np.array([p.rotation_wxyz for p in poses]),
                     np.array([p.position_m for p in poses]))
    for k, sweep in enumerate(sweeps()):
        # The raw sweep: Argo's compensation undone with the 6-DoF poses (see test_pose_real.py).
        per_point = se3_inverse(track.at(sweep.t_ns + sweep.offset_ns)) @ track.at([sweep.t_ns])[0]
        raw = np.einsum("nij,nj->ni", per_point[:, :3, :3], sweep.xyz_m) + per_point[:, :3, 3]
        pts = np.zeros(len(raw), LIDAR_DTYPE)
        pts["x"], pts["y"], pts["z"] = raw.T
        pts["t_offset_ns"] = sweep.offset_ns
        msgs.append(SensorMessage("lidar/av2", "av2_lidar", sweep.t_ns, 0, k, "lidar_points_v1", pts.tobytes()))
    return sorted(msgs, key=lambda m: m.t_sensor_ns)


def test_av2_snapshot_with_a_pose_channel_is_compensated_in_6dof(tmp_path: Path) -> None:
    env = Direct(tmp_path)
    times, _ = pose_samples()
    for vehicle in ("av2-pose", "av2-state", "av2-posesonly"):
        env.registry.add(bundle(vehicle, "av2_lidar", times[0] - NS, np.eye(4)))  # AV2 points are ego-frame
    given = [s.xyz_m for s in sweeps()]

    path = tmp_path / "pose.mcap"
    seg = env.ingest(path, write_snapshot(path, av2_messages(True, True), vehicle_id="av2-pose"), vehicle="av2-pose")
    got, report = calibrated_sweeps(env, seg, "lidar/av2")
    ego = report["ego_motion"]
    assert ego["model"] == MODEL_6DOF and ego["source_topic"] == "pose" and ego["poses"] == 2706
    assert ego["bad_poses"] == 1 and env.bad == ["pose_malformed"]
    assert report["streams"][0]["ego_model"] == MODEL_6DOF
    for out, want in zip(got, given, strict=True):
        assert np.abs(out - want).max() < 1e-3  # Argo's compensated sweep, to float32 storage

    path = tmp_path / "state.mcap"
    seg = env.ingest(path, write_snapshot(path, av2_messages(False, True), vehicle_id="av2-state"), vehicle="av2-state")
    got, report = calibrated_sweeps(env, seg, "lidar/av2")
    ego = report["ego_motion"]
    assert ego["model"] == MODEL_PLANAR and ego["states"] == 2706 and "poses" not in ego
    assert min(np.abs(out - want).max() for out, want in zip(got, given, strict=True)) > 0.2  # no roll/pitch/z

    # No vehicle-state stream at all: the pose stream alone makes the segment calibratable.
    path = tmp_path / "posesonly.mcap"
    seg = env.ingest(path, write_snapshot(path, av2_messages(True, False), vehicle_id="av2-posesonly"),
                     vehicle="av2-posesonly")
    assert seg.vehicle_states == () and [r.encoding for r in seg.other_streams if r.topic == "pose"] == [POSE_ENCODING]
    got, report = calibrated_sweeps(env, seg, "lidar/av2")
    assert report["ego_motion"]["model"] == MODEL_6DOF
    env.db.close()


def test_a_pose_channel_of_junk_falls_back_to_the_planar_states(tmp_path: Path) -> None:
    msgs = av2_messages(False, True)
    t0 = msgs[0].t_sensor_ns
    msgs += [SensorMessage("pose", "av2/ins", t0 + k * NS // 10, 0, k, POSE_ENCODING,
                           encode_small(VehiclePose((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))[:-3]) for k in range(5)]
    env = Direct(tmp_path)
    env.registry.add(bundle("car-1", "av2_lidar", t0 - NS, np.eye(4)))
    path = tmp_path / "junk.mcap"
    seg = env.ingest(path, write_snapshot(path, sorted(msgs, key=lambda m: m.t_sensor_ns)))
    _, report = calibrated_sweeps(env, seg, "lidar/av2")
    ego = report["ego_motion"]
    assert ego["model"] == MODEL_PLANAR and ego["poses"] == 0 and ego["bad_poses"] == 5 and "pose_unusable" in ego
    assert env.bad == ["pose_malformed"] * 5
    env.db.close()


def test_a_replayed_comma2k19_drive_is_compensated_with_its_own_6dof_poses(tmp_path: Path) -> None:
    """The replay's messages (its pose stream included) plus a LiDAR that sees fixed points beside
    the real road from the real poses: the ingest compensates with the poses, so each sweep lands
    back on the points; the planar states alone leave the road's climb and the car's pitch in."""
    msgs = segment_messages(load_segment(COMMA))
    t0 = msgs[0].t_sensor_ns
    msgs = [m for m in msgs if m.t_sensor_ns < t0 + 6 * NS]  # 6 s at ~25 m/s
    pose_msgs = [m for m in msgs if m.topic == "pose"]
    poses = [decode_small(m.payload, VehiclePose) for m in pose_msgs]
    track = EgoPoses(np.array([m.t_sensor_ns for m in pose_msgs]), np.array([p.rotation_wxyz for p in poses]),
                     np.array([p.position_m for p in poses]))
    vehicle_T_lidar = se3(np.eye(3), [1.0, 0.0, 1.5])
    rng = np.random.default_rng(3)
    sweeps_true = []
    for k in range(40):  # 10 Hz from 1 s on; each sweep sees 2,000 fixed points 8-40 m around the car
        sweep_t = t0 + NS + k * NS // 10
        offsets = np.sort(rng.integers(0, 99_000_000, 2000))
        here = track.at([sweep_t])[0]
        local = np.column_stack([rng.uniform(-40, 40, 2000), rng.uniform(-40, 40, 2000), rng.uniform(-1, 3, 2000)])
        local = local[np.hypot(local[:, 0], local[:, 1]) > 8][:1500]
        world = local @ here[:3, :3].T + here[:3, 3]
        lidar_T_world = se3_inverse(track.at(sweep_t + offsets[:len(world)]) @ vehicle_T_lidar)
        seen = np.einsum("nij,nj->ni", lidar_T_world[:, :3, :3], world) + lidar_T_world[:, :3, 3]
        pts = np.zeros(len(seen), LIDAR_DTYPE)
        pts["x"], pts["y"], pts["z"] = seen.T
        pts["t_offset_ns"] = offsets[:len(world)]
        msgs.append(SensorMessage("lidar/top", "lidar_top", sweep_t, 0, k, "lidar_points_v1", pts.tobytes()))
        sweeps_true.append(local)
    msgs.sort(key=lambda m: m.t_sensor_ns)
    env = Direct(tmp_path)
    for vehicle in ("comma", "comma-planar"):
        env.registry.add(bundle(vehicle, "lidar_top", t0 - NS, vehicle_T_lidar))
    errors = {}
    for vehicle, keep in (("comma", msgs), ("comma-planar", [m for m in msgs if m.topic != "pose"])):
        path = tmp_path / f"{vehicle}.mcap"
        seg = env.ingest(path, write_snapshot(path, keep, vehicle_id=vehicle), vehicle=vehicle)
        got, report = calibrated_sweeps(env, seg, "lidar/top")
        errors[report["ego_motion"]["model"]] = max(float(np.abs(g - w).max()) for g, w in zip(got, sweeps_true,
                                                                                                 strict=True))
    print(f"\ncomma2k19 replay, points beside the road: 6-DoF max error {errors[MODEL_6DOF] * 100:.2f} cm, "
          f"planar {errors[MODEL_PLANAR] * 100:.2f} cm")
    assert errors[MODEL_6DOF] < 0.002  # float32 storage; the truth uses the same interpolation
    assert errors[MODEL_PLANAR] > 0.05
    env.db.close()


def test_real_poses_survive_the_pose_contract() -> None:
    _, poses = pose_samples()
    decoded = [decode_small(encode_small(p), VehiclePose) for p in poses]
    assert decoded == poses
    # What the planar state cannot carry: the car stands ~2.5° nose-up on this street.
    pitch_up_deg = np.degrees(np.arcsin(quat_to_matrix(np.array([p.rotation_wxyz for p in decoded]))[:, 2, 0]))
    assert 1.0 < np.median(pitch_up_deg) < 4.0
