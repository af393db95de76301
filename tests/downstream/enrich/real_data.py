"""Readers of the real fixtures the enrichment tests use (tests only: production reads calibrated.mcap).

Every sweep goes through the cloud's own path: the dataset's calibration through the real importer
(KITTI, nuScenes) and :func:`cloud_ingest.processing.compensate_sweep`, with AV2's recorded ego poses
for motion compensation, so the points reach the BEV in the vehicle frame as calibrated.mcap holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.feather as feather

from cloud_ingest.calibration.checks import sensor_pose
from cloud_ingest.calibration.geometry import EgoPoses
from cloud_ingest.calibration.importers import import_calibration
from cloud_ingest.processing.calibrate import compensate_sweep
from downstream.enrich.records import EgoStates, Tracks
from shared.payloads import LIDAR_DTYPE
from simulator_harness.seeds.commonroad import load_commonroad
from simulator_harness.trajectory import require

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"
AV2_7FAB = REAL / "av2" / "log"
AV2_ADCF = REAL / "av2" / "adcf7d18"
NUSC = REAL / "nuscenes"
NUSC_PKL = NUSC / "n015-2018-07-24-11-22-45+0800.pkl"
KITTI = REAL / "kitti"
OUSTER = REAL / "ouster"
LANELET2_OSM = REAL / "maps" / "lanelet2_mapping_example.osm"
COMMONROAD_US101 = REAL / "commonroad" / "USA_US101-4_1_T-1.xml"
AV2_ADCF_MAP = AV2_ADCF / "map" / "log_map_archive_adcf7d18-0510-35b0-a2fa-b4cea13a6d76____PIT_city_57819.json"


def lidar_array(x: Any, y: Any, z: Any, intensity: Any, ring: Any, t_offset_ns: Any) -> np.ndarray:
    out = np.zeros(len(x), dtype=LIDAR_DTYPE)
    out["x"], out["y"], out["z"] = x, y, z
    out["intensity"], out["ring"], out["t_offset_ns"] = intensity, ring, t_offset_ns
    return out


def av2_poses(log: Path) -> EgoPoses:
    col = feather.read_table(log / "city_SE3_egovehicle.feather").column
    return EgoPoses(col("timestamp_ns").to_numpy(),
                    np.stack([col(c).to_numpy() for c in ("qw", "qx", "qy", "qz")], axis=1),
                    np.stack([col(c).to_numpy() for c in ("tx_m", "ty_m", "tz_m")], axis=1))


def av2_sweep_times(log: Path) -> list[int]:
    return sorted(int(p.stem) for p in (log / "sensors" / "lidar").glob("*.feather"))


def av2_sweep(log: Path, t_ns: int) -> np.ndarray:
    """An AV2 sweep (already in the egovehicle frame) motion-compensated with the log's poses."""
    col = feather.read_table(log / "sensors" / "lidar" / f"{t_ns}.feather").column
    x, y, z, intensity = (col(c).to_numpy().astype(np.float32) for c in ("x", "y", "z", "intensity"))
    raw = lidar_array(x, y, z, intensity, col("laser_number").to_numpy(), col("offset_ns").to_numpy())
    points, _ = compensate_sweep(raw, t_ns, av2_poses(log), np.eye(4))
    return points


def av2_tracks(log: Path) -> Tracks:
    """AV2 annotations (cuboids in the egovehicle frame at each sweep time) as :class:`Tracks`."""
    d = feather.read_table(log / "annotations.feather").to_pydict()
    times = np.unique(np.asarray(d["timestamp_ns"], dtype=np.int64))
    ids = sorted(set(d["track_uuid"]))
    row = {u: i for i, u in enumerate(ids)}
    kinds = {u: c for u, c in zip(d["track_uuid"], d["category"], strict=True)}
    shape = (len(ids), times.size)
    arrays = {k: np.full(shape, np.nan) for k in ("x", "y", "yaw", "length", "width")}
    valid = np.zeros(shape, dtype=bool)
    ti = np.searchsorted(times, np.asarray(d["timestamp_ns"], dtype=np.int64))
    ri = np.array([row[u] for u in d["track_uuid"]])
    qw, qx, qy, qz = (np.asarray(d[k]) for k in ("qw", "qx", "qy", "qz"))
    arrays["x"][ri, ti], arrays["y"][ri, ti] = d["tx_m"], d["ty_m"]
    arrays["yaw"][ri, ti] = np.arctan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    arrays["length"][ri, ti], arrays["width"][ri, ti] = d["length_m"], d["width_m"]
    valid[ri, ti] = True
    return Tracks(tuple(ids), tuple(kinds[u] for u in ids), times, arrays["x"], arrays["y"], arrays["yaw"],
                  arrays["length"], arrays["width"], valid)


def kitti_sweep() -> np.ndarray:
    """KITTI frame 000000 (HDL-64, reflectance 0-1 scaled to 0-255) in the OXTS vehicle frame."""
    raw = np.fromfile(KITTI / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)
    bundle = import_calibration(KITTI / "calib" / "000000.txt", "kitti", "kitti-car", "v1", 0)
    pts = lidar_array(raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3] * 255.0, 0, 0)
    return compensate_sweep(pts, 0, None, sensor_pose(bundle, "velodyne"))[0]


def nuscenes_sweep() -> np.ndarray:
    """The nuScenes LIDAR_TOP keyframe (intensity 0-255) in the ego frame."""
    raw = np.fromfile(next(NUSC.glob("*LIDAR_TOP*.bin")), dtype=np.float32).reshape(-1, 5)
    bundle = import_calibration(NUSC_PKL, "nuscenes", "nusc-car", "n015", 0)
    pts = lidar_array(raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3], raw[:, 4], 0)
    return compensate_sweep(pts, 0, None, sensor_pose(bundle, "LIDAR_TOP"))[0]


def ouster_sweep(i: int) -> np.ndarray:
    """Ouster OS1-64 sweep ``i`` (0 or 1) in its own sensor frame (the recording has no vehicle
    extrinsics); its photon-count intensity is clipped to the 0-255 of ``LIDAR_DTYPE``."""
    with np.load(OUSTER / f"sweep_{i}.npz") as f:
        p = f["points"]
    return lidar_array(p["x"], p["y"], p["z"], np.minimum(p["intensity"], 255.0), p["ring"],
                       p["t"].astype(np.int64))


def av2_ego(log: Path, t_ns: np.ndarray) -> EgoStates:
    """The AV2 ego track at ``t_ns`` as :class:`EgoStates`: pose from ``city_SE3_egovehicle``, speed and
    acceleration by central differences of it."""
    poses = av2_poses(log)
    world = poses.at(t_ns)
    x, y = world[:, 0, 3], world[:, 1, 3]
    yaw = np.unwrap(np.arctan2(world[:, 1, 0], world[:, 0, 0]))
    t_s = (t_ns - t_ns[0]) / 1e9
    speed = np.hypot(np.gradient(x, t_s), np.gradient(y, t_s))
    return EgoStates(t_ns, speed, np.gradient(speed, t_s), x, y, yaw)


def ngsim_as_ego(row: int) -> tuple[EgoStates, Tracks]:
    """NGSIM US-101 (CommonRoad) with recorded vehicle ``row`` as the ego: its states, and every other
    vehicle as a track in its vehicle frame (x along its heading), 0.1 s steps from t = 0."""
    tr = load_commonroad(COMMONROAD_US101).trajectories
    valid = tr.valid[row]
    t_ns = np.round(tr.t_s[valid] * 1e9).astype(np.int64)
    ex, ey, eyaw = tr.x_m[row, valid], tr.y_m[row, valid], tr.yaw_rad[row, valid]
    ego = EgoStates(t_ns, tr.speed_mps[row, valid], np.nan_to_num(tr.accel_mps2[row, valid]), ex, ey, eyaw)
    others = [r for r in range(tr.n_agents) if r != row]
    dx, dy = tr.x_m[others][:, valid] - ex, tr.y_m[others][:, valid] - ey
    c, s = np.cos(eyaw), np.sin(eyaw)
    ids, kinds = require(tr.agent_id, "agent_id"), require(tr.kind, "kind")
    length, width = require(tr.length_m, "length_m"), require(tr.width_m, "width_m")
    return ego, Tracks(tuple(str(ids[r]) for r in others), tuple(str(kinds[r]) for r in others),
                       t_ns, c * dx + s * dy, -s * dx + c * dy, tr.yaw_rad[others][:, valid] - eyaw,
                       np.repeat(length[others][:, None], valid.sum(), 1),
                       np.repeat(width[others][:, None], valid.sum(), 1), tr.valid[others][:, valid])
