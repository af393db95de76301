"""Imported calibration + geometry on real sweeps: KITTI, nuScenes and Argoverse 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.feather as feather
import pytest

from cloud_ingest.calibration.checks import find_camera, sensor_pose
from cloud_ingest.calibration.geometry import (
    EgoPoses,
    motion_compensate,
    project_points,
    se3,
    se3_inverse,
    transform_points,
)
from cloud_ingest.calibration.importers import import_calibration
from cloud_ingest.calibration.nuscenes import safe_load

REAL = Path(__file__).parents[2] / "fixtures" / "real"
NUSC = REAL / "nuscenes"
NUSC_PKL = NUSC / "n015-2018-07-24-11-22-45+0800.pkl"
AV2 = REAL / "av2" / "log"


def kitti_p2() -> np.ndarray:
    for line in (REAL / "kitti" / "calib" / "000000.txt").read_text().splitlines():
        if line.startswith("P2:"):
            return np.array(line.split()[1:], dtype=float).reshape(3, 4)
    raise AssertionError("P2 missing")


def test_kitti_sweep_lands_on_the_labelled_pedestrian() -> None:
    bundle = import_calibration(REAL / "kitti" / "calib" / "000000.txt", "kitti", "kitti-car", "v1", 0)
    cam = find_camera(bundle, "image_2")
    velo = np.fromfile(REAL / "kitti" / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    vehicle = transform_points(sensor_pose(bundle, "velodyne"), velo)
    proj = project_points(vehicle, cam, sensor_pose(bundle, "image_2"))
    assert proj.in_bounds.sum() > 15_000  # of 115k points, the camera sees the forward ~90°
    assert np.all(proj.depth_m[velo[:, 0] > 5.0] > 0)  # everything ahead of the car is in front
    assert not proj.in_bounds[velo[:, 0] < -1.0].any()  # nothing behind it is in the image

    # label_2: "Pedestrian ... 2D bbox (l t r b), dims h w l, location x y z (rectified camera 0,
    # bottom centre), ry". P2 = K [I | t]: rectified camera 0 sits at -t in the image_2 frame.
    fields = (REAL / "kitti" / "label_2" / "000000.txt").read_text().split()
    assert fields[0] == "Pedestrian"
    left, top, right, bottom, h, w, length, x, y, z, ry = map(float, fields[4:15])
    p2 = kitti_p2()
    vehicle_T_rect = sensor_pose(bundle, "image_2") @ se3(np.eye(3), np.linalg.solve(p2[:, :3], p2[:, 3]))
    rect = transform_points(se3_inverse(vehicle_T_rect), vehicle)
    dx, dy, dz = (rect - [x, y, z]).T
    c, s = np.cos(ry), np.sin(ry)
    in_box = (np.abs(c * dx - s * dz) <= length / 2) & (np.abs(s * dx + c * dz) <= w / 2) & (dy <= 0) & (dy >= -h)
    assert in_box.sum() > 100 and proj.in_bounds[in_box].all()
    # Hand-drawn 2D boxes hug the silhouette while the 3D box holds swinging limbs: allow 4 px.
    u, v = proj.uv_px[in_box].T
    assert u.min() >= left - 4 and u.max() <= right + 4 and v.min() >= top - 4 and v.max() <= bottom + 4
    # Points hit the side facing the car: between the front face (z - w/2) and the centre, with
    # 0.1 m for the label's centimetre rounding and the LiDAR's ~2 cm range noise.
    depth = proj.depth_m[in_box]
    assert z - w / 2 - 0.1 <= np.median(depth) <= z + 0.1
    assert np.abs(depth - z).max() <= np.hypot(length, w) / 2 + 0.1
    # Depth ordering: the pedestrian occludes what lies behind it in its 2D box. The other points
    # there (off the ground, which also reaches in front of the feet) are farther away.
    in_2d = proj.in_bounds & (proj.uv_px[:, 0] >= left) & (proj.uv_px[:, 0] <= right) \
        & (proj.uv_px[:, 1] >= top) & (proj.uv_px[:, 1] <= bottom)
    behind = in_2d & ~in_box & (vehicle[:, 2] > vehicle[in_box, 2].min() + 0.2)
    assert behind.sum() > 100
    assert np.percentile(proj.depth_m[behind], 5) > depth.max()


def box_mask(points: np.ndarray, box: list[float]) -> np.ndarray:
    """mmdetection3d LiDAR boxes: gravity centre x y z, size l w h, yaw about +z."""
    x, y, z, length, w, h, yaw = box
    d = points - [x, y, z]
    c, s = np.cos(yaw), np.sin(yaw)
    inside: np.ndarray = (np.abs(c * d[:, 0] + s * d[:, 1]) <= length / 2) & (np.abs(-s * d[:, 0] + c * d[:, 1]) <= w / 2) \
        & (np.abs(d[:, 2]) <= h / 2)
    return inside


@pytest.fixture(scope="module")
def nuscenes() -> dict[str, Any]:
    bundle = import_calibration(NUSC_PKL, "nuscenes", "nusc-car", "n015", 0)
    info = safe_load(NUSC_PKL.read_bytes())["data_list"][0]
    raw = np.fromfile(NUSC / info["lidar_points"]["lidar_path"], dtype=np.float32).reshape(-1, 5)
    lidar = raw[:, :3].astype(np.float64)
    return {"bundle": bundle, "info": info, "lidar": lidar,
            "vehicle": transform_points(sensor_pose(bundle, "LIDAR_TOP"), lidar)}


def test_nuscenes_lidar_projects_into_cam_front(nuscenes: dict[str, Any]) -> None:
    bundle, vehicle = nuscenes["bundle"], nuscenes["vehicle"]
    front = project_points(vehicle, find_camera(bundle, "CAM_FRONT"), sensor_pose(bundle, "CAM_FRONT"))
    assert front.in_bounds.sum() > 2000 and front.in_bounds.mean() > 0.05
    assert np.all(front.depth_m[front.in_bounds] > 0)
    camera_x = sensor_pose(bundle, "CAM_FRONT")[0, 3]
    assert not front.in_bounds[vehicle[:, 0] < camera_x].any()  # the rear half-space stays out
    ahead = (vehicle[:, 0] > 10) & (np.abs(vehicle[:, 1]) < 2)
    assert np.all(front.depth_m[ahead] > 10 - camera_x - 0.1) and front.in_bounds[ahead].mean() > 0.9
    back = project_points(vehicle, find_camera(bundle, "CAM_BACK"), sensor_pose(bundle, "CAM_BACK"))
    assert back.in_bounds.sum() > 1000 and np.all(vehicle[back.in_bounds, 0] < 0.1)


def test_nuscenes_objects_land_in_their_boxes_in_depth_order(nuscenes: dict[str, Any]) -> None:
    bundle, info, lidar = nuscenes["bundle"], nuscenes["info"], nuscenes["lidar"]
    cam = find_camera(bundle, "CAM_FRONT")
    vehicle_T_cam = sensor_pose(bundle, "CAM_FRONT")
    proj = project_points(nuscenes["vehicle"], cam, vehicle_T_cam)
    cam_boxes = info["cam_instances"]["CAM_FRONT"]
    # cam_instances centres are in the camera frame (computed with the camera-time lidar2cam).
    centres = transform_points(vehicle_T_cam, np.array([b["bbox_3d"][:3] for b in cam_boxes]))
    lidar_to_cam = se3_inverse(vehicle_T_cam) @ sensor_pose(bundle, "LIDAR_TOP")
    objects = []
    for inst in info["instances"]:
        inside = box_mask(lidar, inst["bbox_3d"]) & proj.in_bounds
        if inst["bbox_label"] < 0 or inside.sum() < 5:
            continue
        centre = transform_points(sensor_pose(bundle, "LIDAR_TOP"), np.array([inst["bbox_3d"][:3]]))[0]
        gap = np.linalg.norm(centres - centre, axis=1)
        assert gap.min() < 1.0  # the same object, seen 35 ms apart by LiDAR and camera
        x0, y0, x1, y1 = cam_boxes[int(gap.argmin())]["bbox"]
        label_depth = transform_points(lidar_to_cam, np.array([inst["bbox_3d"][:3]]))[0, 2]
        # CAM_FRONT exposed 35 ms before the sweep; at ~9.4 m/s that moves the scene by 0.33 m,
        # i.e. fx · 0.4 m / depth pixels sideways at worst. Depth: box half-diagonal + 0.5 m.
        margin = cam.fx * 0.4 / label_depth + 2
        u, v = proj.uv_px[inside].T
        assert u.min() >= x0 - margin and u.max() <= x1 + margin
        assert v.min() >= y0 - margin and v.max() <= y1 + margin
        reach = np.hypot(inst["bbox_3d"][3], inst["bbox_3d"][4]) / 2 + 0.5
        depth = proj.depth_m[inside]
        assert np.abs(depth - label_depth).max() <= reach
        objects.append((label_depth, reach, np.median(depth)))
    assert len(objects) >= 10
    ordered = 0
    for near_depth, near_reach, near_median in objects:
        for far_depth, far_reach, far_median in objects:
            if far_depth - near_depth > near_reach + far_reach:
                assert near_median < far_median
                ordered += 1
    assert ordered >= 20


def test_av2_motion_compensation_matches_ego_speed_times_time_span() -> None:
    poses_table = feather.read_table(AV2 / "city_SE3_egovehicle.feather")
    col = poses_table.column
    poses = EgoPoses(col("timestamp_ns").to_numpy(),
                     np.stack([col(c).to_numpy() for c in ("qw", "qx", "qy", "qz")], axis=1),
                     np.stack([col(c).to_numpy() for c in ("tx_m", "ty_m", "tz_m")], axis=1))
    sweep_path = AV2 / "sensors" / "lidar" / "315966265259836000.feather"  # the first of the two sweeps
    sweep_t = int(sweep_path.stem)
    sweep = feather.read_table(sweep_path)
    points = np.stack([sweep.column(c).to_numpy().astype(np.float64) for c in "xyz"], axis=1)
    offsets = sweep.column("offset_ns").to_numpy()
    fixed = motion_compensate(points, offsets, sweep_t, poses)  # AV2 sweeps are in the vehicle frame
    correction = np.linalg.norm(fixed - points, axis=1)
    dt_s = offsets / 1e9

    # Ego speed and yaw rate from the raw pose track, pose pair by pose pair, over the poses that
    # bracket the sweep. The track holds near-duplicate poses microseconds apart; those are skipped.
    t = poses.t_ns
    first = int(np.searchsorted(t, sweep_t, side="right")) - 1
    last = int(np.searchsorted(t, sweep_t + int(offsets.max()), side="left"))
    keep = [first]
    for i in range(first + 1, last + 1):
        if t[i] - t[keep[-1]] >= 1_000_000:
            keep.append(i)
    step_s = np.diff(t[keep]) / 1e9
    speed = np.linalg.norm(np.diff(poses.translation_m[keep], axis=0), axis=1) / step_s
    q = poses.rotation_wxyz[keep]
    turn = 2 * np.arccos(np.clip(np.abs(np.sum(q[1:] * q[:-1], axis=1)), 0, 1)) / step_s
    v_lo, v_hi, omega = speed.min(), speed.max(), turn.max()
    assert 0.3 < v_lo < v_hi < 1.5 and omega > 0.01  # a slow turn: both terms matter
    radius = np.linalg.norm(points, axis=1)
    # Each point moves by at most (v + ω r) Δt and, near the car where rotation barely moves it,
    # by at least v Δt minus the rotation's share.
    assert np.all(correction <= (v_hi + omega * radius) * dt_s + 1e-3)
    near = radius < 5
    assert near.sum() > 1000
    assert np.all(correction[near] >= (v_lo - omega * radius[near]) * dt_s[near] - 1e-3)
    # Corrections grow across the sweep: the last tenth moves ~10x as far as the first.
    order = np.argsort(offsets)
    tenth = len(order) // 10
    assert np.median(correction[order[-tenth:]]) > 5 * np.median(correction[order[:tenth]])
    assert 0.03 < np.median(correction[near]) < 0.1  # 0.7 m/s × ~50 ms average span
    # The car drives forward, so a point measured later was seen from further ahead: bringing it
    # back to the sweep-start frame pushes it forward (+x), never backward.
    assert np.mean((fixed - points)[near, 0] > 0) > 0.99
