"""Calibration applied to segments: a moving ego (50 Hz vehicle state on an arc) sees a static wall
with a rotating LiDAR and static radar targets; uploaded through the real daemon, the processed
sweeps are flat walls again, static Doppler is zero, offsets are applied and the Segment points at
the processed objects. Plus deferral off the request path, bad input, and a real KITTI sweep."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cloud_ingest.calibration.checks import extrinsics_from_matrix, find_camera, sensor_pose
from cloud_ingest.calibration.geometry import project_points, quat_to_matrix, se3, se3_inverse, transform_points
from cloud_ingest.calibration.importers import import_calibration
from cloud_ingest.calibration.registry import CalibrationRegistry
from cloud_ingest.pipeline import IngestDeps, ingest_upload
from cloud_ingest.processing import EXTRAPOLATE_NS, EgoTrack, calibrated_key, compensate_sweep, report_key
from cloud_ingest.storage.metadata.protocol import UploadRecord
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.objects.local import LocalObjectStore
from shared.calibration import CalibrationBundle
from shared.messages import SensorMessage
from shared.payloads import LIDAR_DTYPE, RADAR_DTYPE, VehicleState, decode_points, encode_small
from shared.segment import Segment
from shared.snapshot import SnapshotReader
from tests.cloud_ingest.conftest import NS, T0_NS, ServerThread, open_config_db, write_snapshot
from tests.cloud_ingest.tus.test_handlers import uploader

SPEED_MPS, YAW_RATE_RADPS = 10.0, 0.2
LIDAR_OFFSET_NS = -30_000_000  # the LiDAR stamps 30 ms late; the bundle says so
WALL_X_M = 60.0  # a static wall: the plane x = 60 m of the world (ENU) frame
V_T_LIDAR = se3(quat_to_matrix([np.cos(0.025), 0, 0, np.sin(0.025)]), [1.2, 0.1, 1.8])
V_T_RADAR = se3(quat_to_matrix([np.cos(-0.05), 0, 0, np.sin(-0.05)]), [3.7, -0.2, 0.5])
RNG = np.random.default_rng(7)
STATIC = np.column_stack([RNG.uniform(20, 70, 12), RNG.uniform(-12, 12, 12), RNG.uniform(0.2, 2.0, 12)])
MOVER_P0, MOVER_V = np.array([40.0, -5.0, 0.8]), np.array([0.0, 3.0, 0.0])  # a car crossing at 3 m/s
REAL = Path(__file__).parents[2] / "fixtures" / "real" / "kitti"


def world_T_vehicle(t_ns: int | np.ndarray) -> np.ndarray:
    """The true ego pose(s) on a circular arc (10 m/s, 0.2 rad/s) starting at T0 at the origin."""
    yaw = YAW_RATE_RADPS * (np.asarray(t_ns, dtype=np.int64) - T0_NS) / 1e9
    r = SPEED_MPS / YAW_RATE_RADPS
    zero = np.zeros_like(yaw)
    return se3(quat_to_matrix(np.stack([np.cos(yaw / 2), zero, zero, np.sin(yaw / 2)], axis=-1)),
               np.stack([r * np.sin(yaw), r * (1 - np.cos(yaw)), zero], axis=-1))


def drive(duration_s: float = 3.0, lidar_bad: bool = False, state_junk: bool = False,
          start_ns: int = T0_NS) -> list[SensorMessage]:
    """Vehicle state at 50 Hz, 10 Hz LiDAR sweeps of the wall (per-point times over 99 ms), 20 Hz radar."""
    msgs = []
    for i in range(int(duration_s * 50)):
        t = start_ns + i * NS // 50
        pose = world_T_vehicle(t)
        yaw = float(np.arctan2(pose[1, 0], pose[0, 0]))
        msgs.append(SensorMessage("vehicle_state", "can0", t, 0, i, "vehicle_state_v1", encode_small(
            VehicleState(pose[0, 3], pose[1, 3], yaw, SPEED_MPS, 0.0, 0.0, 0.0, True))))
    if state_junk:
        msgs.append(SensorMessage("vehicle_state", "can0", start_ns + NS + 7, 0, 999, "vehicle_state_v1", b"junk"))
    n = 600
    offsets = np.linspace(0, 99_000_000, n).astype(np.int64)
    wall = np.column_stack([np.full(n, WALL_X_M), np.linspace(-25, 25, n), 0.3 + (np.arange(n) % 5) * 0.5])
    for k in range(int(duration_s * 10) - 2):
        sweep_true = start_ns + 50_000_000 + k * NS // 10
        pts = np.zeros(n, LIDAR_DTYPE)
        lidar_T_world = se3_inverse(world_T_vehicle(sweep_true + offsets) @ V_T_LIDAR)  # where each beam fired
        p = np.einsum("nij,nj->ni", lidar_T_world[:, :3, :3], wall) + lidar_T_world[:, :3, 3]
        pts["x"], pts["y"], pts["z"] = p.T
        pts["t_offset_ns"], pts["ring"] = offsets, np.arange(n) % 5
        payload = b"\x01\x02\x03" if lidar_bad and k == 3 else pts.tobytes()
        msgs.append(SensorMessage("lidar/top", "lidar_top", sweep_true - LIDAR_OFFSET_NS, 0, k, "lidar_points_v1",
                                  payload))
    for k in range(int(duration_s * 20)):
        t = start_ns + 5_000_000 + k * NS // 20
        msgs.append(SensorMessage("radar/front", "radar_front", t, 0, k, "radar_v1", radar_returns(t).tobytes()))
    msgs.sort(key=lambda m: m.t_sensor_ns)
    return msgs


def radar_returns(t_ns: int) -> np.ndarray:
    """What the radar measures at ``t_ns``: STATIC targets then the mover, Doppler = range rate."""
    wtv = world_T_vehicle(t_ns)
    targets = np.vstack([STATIC, MOVER_P0 + MOVER_V * (t_ns - T0_NS) / 1e9])
    in_radar = transform_points(se3_inverse(wtv @ V_T_RADAR), targets)
    rng = np.linalg.norm(in_radar, axis=1)
    u_vehicle = (in_radar / rng[:, None]) @ V_T_RADAR[:3, :3].T
    v_radar = np.array([SPEED_MPS, 0, 0]) + np.cross([0, 0, YAW_RATE_RADPS], V_T_RADAR[:3, 3])
    target_v = np.vstack([np.zeros_like(STATIC), wtv[:3, :3].T @ MOVER_V])  # in the vehicle frame
    out = np.zeros(len(targets), RADAR_DTYPE)
    out["range_m"] = rng
    out["azimuth_rad"] = np.arctan2(in_radar[:, 1], in_radar[:, 0])
    out["elevation_rad"] = np.arcsin(in_radar[:, 2] / rng)
    out["doppler_mps"] = np.sum((target_v - v_radar) * u_vehicle, axis=1)
    return out


def mover_radial_mps(t_ns: int) -> float:
    """The mover's true radial speed over ground along the radar ray at ``t_ns``."""
    wtv = world_T_vehicle(t_ns)
    p = transform_points(se3_inverse(wtv @ V_T_RADAR), (MOVER_P0 + MOVER_V * (t_ns - T0_NS) / 1e9)[None])[0]
    return float((wtv[:3, :3].T @ MOVER_V) @ (V_T_RADAR[:3, :3] @ (p / np.linalg.norm(p))))


def calib(vehicle: str = "car-1") -> CalibrationBundle:
    return CalibrationBundle(vehicle, "rig-1", T0_NS - 100 * NS, None, (),
                             (extrinsics_from_matrix("lidar_top", V_T_LIDAR),
                              extrinsics_from_matrix("radar_front", V_T_RADAR)),
                             {"lidar_top": LIDAR_OFFSET_NS})


def wall_residual_m(points: np.ndarray, t_ns: int, vehicle_T_points: np.ndarray) -> float:
    """Largest distance of ``points`` (in a frame mapped to the vehicle at ``t_ns``) from the wall."""
    xyz = np.column_stack([points["x"], points["y"], points["z"]]).astype(np.float64)
    return float(np.abs(transform_points(world_T_vehicle(t_ns) @ vehicle_T_points, xyz)[:, 0] - WALL_X_M).max())


def check_calibrated(store: LocalObjectStore, seg: Segment) -> dict[str, int]:
    """Assert everything item 1 promises about ``seg``'s processed objects; return counts per topic."""
    key = calibrated_key(seg.segment_id, seg.start_ns)
    assert [r.object_key for r in seg.lidar_sweeps + seg.radar_returns] == [key, key]
    raw = {r.topic: r for r in seg.other_streams}
    assert raw["lidar/top"].object_key.startswith("raw/") and raw["radar/front"].object_key.startswith("raw/")
    lidar = seg.lidar_sweeps[0]
    assert lidar.first_ns == raw["lidar/top"].first_ns + LIDAR_OFFSET_NS and lidar.count == raw["lidar/top"].count
    assert seg.radar_returns[0].first_ns == raw["radar/front"].first_ns
    counts: dict[str, int] = {}
    with SnapshotReader(store.path(key)) as reader:
        assert reader.manifest.calibration_version == "rig-1"
        for t_ns, msg in reader.messages():
            counts[msg.topic] = counts.get(msg.topic, 0) + 1
            if msg.topic == "lidar/top":
                assert t_ns == msg.t_sensor_ns + LIDAR_OFFSET_NS  # measurement time on the vehicle clock
                pts = decode_points(msg.payload, LIDAR_DTYPE)
                if pts.size == 0:
                    continue
                assert wall_residual_m(pts, t_ns, np.eye(4)) < 0.05  # the smear is gone
            else:
                ret = decode_points(msg.payload, RADAR_DTYPE)
                assert np.abs(ret["doppler_mps"][:-1]).max() < 0.1  # static targets: no radial speed
                assert abs(ret["doppler_mps"][-1] - mover_radial_mps(t_ns)) < 0.1
    assert counts == {"lidar/top": lidar.count, "radar/front": seg.radar_returns[0].count}
    return counts


def raw_smear_m(snapshot: Path) -> tuple[float, float]:
    """How smeared the raw wall is (extrinsic only, no compensation, no offset) and the raw |Doppler|."""
    smear, doppler = 0.0, 0.0
    with SnapshotReader(snapshot) as reader:
        for t_ns, msg in reader.messages():
            if msg.topic == "lidar/top":
                smear = max(smear, wall_residual_m(decode_points(msg.payload, LIDAR_DTYPE), t_ns, V_T_LIDAR))
            elif msg.topic == "radar/front":
                doppler = max(doppler, float(np.abs(decode_points(msg.payload, RADAR_DTYPE)["doppler_mps"]).max()))
    return smear, doppler


@pytest.fixture(scope="module")
def moving_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("calibrated") / "drive.mcap"
    return path, write_snapshot(path, drive())


def test_uploaded_drive_gets_calibrated_streams_through_the_daemon(
        server: ServerThread, tokens: dict[str, str], moving_snapshot: tuple[Path, str]) -> None:
    path, sha = moving_snapshot
    smear, doppler = raw_smear_m(path)
    assert smear > 0.3 and doppler > 5.0  # without calibration applied the data is visibly wrong
    db = open_config_db(server.config)
    try:
        CalibrationRegistry(db).add(calib())
        up = uploader(server, "car-1", tokens["car-1"], path, sha)
        up.upload()
        ids = up.request.response_headers["x-avdata-segments"].split(",")
        seg = Segment.decode(db.get_segment(ids[0]).record)  # type: ignore[union-attr]
        store = LocalObjectStore(server.config.store_dir)
        # The daemon acknowledges once the segment is committed; its worker writes the calibrated
        # outputs right after, off the request path.
        deadline = time.monotonic() + 30
        while db.unprocessed_segments(time.time_ns() + NS, 10) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check_calibrated(store, seg) == {"lidar/top": 28, "radar/front": 60}
        report = json.loads(store.read_bytes(report_key(seg.segment_id, seg.start_ns)))
        assert report["calibration_version"] == "rig-1" and report["ego_motion"]["states"] == 150
        assert {s["topic"]: (s["time_offset_ns"], s["bad_messages"]) for s in report["streams"]} == {
            "lidar/top": (LIDAR_OFFSET_NS, 0), "radar/front": (0, 0)}
        assert db.unprocessed_segments(time.time_ns() + NS, 10) == []  # marked complete
        keys = store.list("processed/2023-11-14")
        again = uploader(server, "car-1", tokens["car-1"], path, sha)
        again.upload()  # the same content again: same ids, no new rows, no new objects
        assert again.request.response_headers["x-avdata-segments"].split(",") == ids
        assert len(db.list_segments("car-1", 10, None)) == 1 and store.list("processed/2023-11-14") == keys
    finally:
        db.close()


class Direct:
    """The pipeline without HTTP: SQLite, a local store, the registry, counted hooks."""

    def __init__(self, root: Path, background: Callable[[Callable[[], None]], object] | None = None) -> None:
        self.root = root
        self.db = open_db("sqlite", sqlite_path=str(root / "meta.db"))
        self.store = LocalObjectStore(root / "store")
        self.registry = CalibrationRegistry(self.db)
        self.missing: list[str] = []
        self.bad: list[str] = []
        self.background = background

    def ingest(self, path: Path, sha: str, vehicle: str = "car-1") -> Segment:
        copy = self.root / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(path, copy)
        rec = UploadRecord(uuid.uuid4().hex, vehicle, path.stat().st_size, 0, sha, "s", "f", "in_progress", 1, 2**62)
        self.db.create_upload(rec)
        res = ingest_upload(copy, rec, IngestDeps(self.db, self.store, self.root / "q", self.registry, 2 * NS,
                                                  self.missing.append, self.background, self.bad.append))
        return Segment.decode(self.db.get_segment(res.segment_ids[0]).record)  # type: ignore[union-attr]


def test_calibrated_streams_are_deferred_and_the_repair_pass_finishes_them(
        tmp_path: Path, moving_snapshot: tuple[Path, str]) -> None:
    jobs: list[Callable[[], None]] = []
    env = Direct(tmp_path, background=jobs.append)
    env.registry.add(calib())
    t0 = time.perf_counter()
    seg = env.ingest(*moving_snapshot)
    ingest_s = time.perf_counter() - t0
    key = calibrated_key(seg.segment_id, seg.start_ns)
    # committed, announced and indexed, but the calibrated streams wait for the worker
    assert env.store.exists(key.replace("calibrated.mcap", "index.json")) and not env.store.exists(key)
    assert [r.segment_id for r in env.db.unprocessed_segments(time.time_ns() + NS, 10)] == [seg.segment_id]
    assert len(jobs) == 1
    t0 = time.perf_counter()
    jobs[0]()
    job_s = time.perf_counter() - t0
    print(f"ingest (deferred) {ingest_s * 1e3:.1f} ms, calibrated pass {job_s * 1e3:.1f} ms")
    assert env.db.unprocessed_segments(time.time_ns() + NS, 10) == []
    check_calibrated(env.store, seg)
    env.db.close()

    # a daemon that died before its worker ran: the repair pass (complete_segments) does the work
    lost = Direct(tmp_path / "lost", background=lambda job: None)
    lost.registry.add(calib())
    seg = lost.ingest(*moving_snapshot)
    from cloud_ingest.processing.complete import complete_segments

    pending = [r.segment_id for r in lost.db.unprocessed_segments(time.time_ns() + NS, 10)]
    assert complete_segments(lost.db, lost.store, pending) == [seg.segment_id]
    check_calibrated(lost.store, seg)
    lost.db.close()


def test_malformed_sensor_messages_are_counted_and_kept_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "bad.mcap"
    sha = write_snapshot(path, drive(lidar_bad=True, state_junk=True))
    env = Direct(tmp_path)
    env.registry.add(calib())
    seg = env.ingest(path, sha)
    assert sorted(env.bad) == ["lidar_malformed", "vehicle_state_malformed"]
    assert check_calibrated(env.store, seg)["lidar/top"] == 28  # the bad sweep is an empty one
    report = json.loads(env.store.read_bytes(report_key(seg.segment_id, seg.start_ns)))
    assert report["ego_motion"]["bad_states"] == 1
    assert [s["bad_messages"] for s in report["streams"]] == [1, 0]
    env.db.close()


def test_joined_segment_points_at_its_members_calibrated_streams(
        tmp_path: Path, moving_snapshot: tuple[Path, str]) -> None:
    later = tmp_path / "later.mcap"
    sha = write_snapshot(later, drive(start_ns=T0_NS + 4 * NS))  # starts ~1 s after the first one ends
    env = Direct(tmp_path)
    env.registry.add(calib())
    first, second = env.ingest(*moving_snapshot), env.ingest(later, sha)
    [joined] = [Segment.decode(r.record) for r in env.db.list_segments("car-1", 10, None) if not r.superseded_by]
    assert set(joined.provenance.parent_segment_ids) == {first.segment_id, second.segment_id}
    assert [r.object_key for r in joined.lidar_sweeps] == [
        calibrated_key(s.segment_id, s.start_ns) for s in (first, second)]
    assert sum(r.count for r in joined.lidar_sweeps) == 56 and len(joined.other_streams) == 4
    for member in (first, second):
        check_calibrated(env.store, member)
    assert env.db.unprocessed_segments(time.time_ns() + NS, 10) == []
    env.db.close()


def test_segments_without_calibration_keep_raw_refs_and_are_counted(
        tmp_path: Path, moving_snapshot: tuple[Path, str]) -> None:
    env = Direct(tmp_path)
    env.registry.add(CalibrationBundle("car-1", "cams-only", T0_NS - 100 * NS, None))  # no LiDAR/radar extrinsics
    seg = env.ingest(*moving_snapshot)
    assert all(r.object_key.startswith("raw/") for r in seg.streams) and seg.other_streams == ()
    assert not env.store.list(f"processed/2023-11-14/{seg.segment_id}/calibrated")
    env.db.close()
    env = Direct(tmp_path / "none")
    seg = env.ingest(*moving_snapshot)
    assert seg.calibration is None and env.missing == ["vehicle_has_none"]
    assert [r.object_key.startswith("raw/") for r in seg.lidar_sweeps + seg.radar_returns] == [True, True]
    env.db.close()


def test_ego_track_extrapolates_past_the_last_state_and_clamps_beyond() -> None:
    times = [T0_NS + i * NS // 50 for i in range(50)]
    states = []
    for t in times:
        p = world_T_vehicle(t)
        states.append(VehicleState(p[0, 3], p[1, 3], float(np.arctan2(p[1, 0], p[0, 0])), SPEED_MPS, 0, 0, 0, True))
    track = EgoTrack.from_states([*times, times[-1]], [*states, states[0]])  # a repeated time is dropped
    assert track.t_ns.size == 50 and track.yaw_rate_radps == pytest.approx(YAW_RATE_RADPS, abs=1e-5)
    poses = track.poses()
    late = times[-1] + 400_000_000
    assert np.abs(poses.at([late])[0] - world_T_vehicle(late)).max() < 0.01
    velocity, angular = track.motion_at(late)
    assert velocity.tolist() == [SPEED_MPS, 0, 0] and angular[2] == pytest.approx(YAW_RATE_RADPS, abs=1e-5)
    lo, hi = track.bounds_ns()
    assert (lo, hi) == (times[0] - EXTRAPOLATE_NS, times[-1] + EXTRAPOLATE_NS)
    sweep = np.zeros(10, LIDAR_DTYPE)
    sweep["x"], sweep["t_offset_ns"] = 5.0, np.arange(10) * 100_000_000
    sweep["y"][9] = np.nan  # a no-return point passes through untouched
    out, clamped = compensate_sweep(sweep, hi - 650_000_000, poses, np.eye(4))
    assert clamped == 2 and np.isnan(out["y"][9]) and np.isfinite(out["x"][:9]).all()


def test_real_kitti_sweep_through_the_processed_path_projects_into_the_image(tmp_path: Path) -> None:
    bundle = import_calibration(REAL / "calib" / "000000.txt", "kitti", "kitti-car", "v1", T0_NS - NS)
    raw = np.fromfile(REAL / "velodyne" / "000000.bin", dtype="<f4").reshape(-1, 4)
    pts = np.zeros(len(raw), LIDAR_DTYPE)
    pts["x"], pts["y"], pts["z"], pts["intensity"] = raw.T
    msgs = [SensorMessage("vehicle_state", "oxts", T0_NS + i * NS // 50, 0, i, "vehicle_state_v1",
                          encode_small(VehicleState(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False))) for i in range(10)]
    msgs.append(SensorMessage("lidar/velodyne", "velodyne", T0_NS + 50_000_000, 0, 0, "lidar_points_v1", pts.tobytes()))
    path = tmp_path / "kitti.mcap"
    sha = write_snapshot(path, sorted(msgs, key=lambda m: m.t_sensor_ns), vehicle_id="kitti-car")
    env = Direct(tmp_path)
    env.registry.add(bundle)
    seg = env.ingest(path, sha, vehicle="kitti-car")
    assert seg.lidar_sweeps[0].object_key == calibrated_key(seg.segment_id, seg.start_ns)
    with SnapshotReader(env.store.path(seg.lidar_sweeps[0].object_key)) as reader:
        [(_, msg)] = list(reader.messages(["lidar/velodyne"]))
    out = decode_points(msg.payload, LIDAR_DTYPE)
    vehicle = np.column_stack([out["x"], out["y"], out["z"]]).astype(np.float64)
    expected = transform_points(sensor_pose(bundle, "velodyne"), raw[:, :3].astype(np.float64))
    assert np.abs(vehicle - expected).max() < 1e-4 and np.array_equal(out["intensity"], pts["intensity"])
    proj = project_points(vehicle, find_camera(bundle, "image_2"), sensor_pose(bundle, "image_2"))
    assert proj.in_bounds.sum() > 15_000 and not proj.in_bounds[raw[:, 0] < -1.0].any()
    env.db.close()
