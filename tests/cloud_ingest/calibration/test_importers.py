"""Importers on the real KITTI, nuScenes and Argoverse 2 calibration files, and on broken ones."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cloud_ingest.calibration.checks import find_camera, sensor_pose
from cloud_ingest.calibration.geometry import project_points, se3_inverse, transform_points
from cloud_ingest.calibration.importers import import_calibration
from cloud_ingest.calibration.nuscenes import safe_load
from cloud_ingest.calibration.registry import CalibrationRegistry
from cloud_ingest.errors import CalibrationFormatError, CalibrationNotFound
from cloud_ingest.storage.metadata.registry import open_db
from shared.calibration import CalibrationBundle

REAL = Path(__file__).parents[2] / "fixtures" / "real"
KITTI_CALIB = REAL / "kitti" / "calib" / "000000.txt"
NUSCENES_PKL = REAL / "nuscenes" / "n015-2018-07-24-11-22-45+0800.pkl"
AV2_LOG = REAL / "av2" / "log"
NUSCENES_CAMERAS = {"CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
                    "CAM_BACK_RIGHT"}


def kitti_raw() -> dict[str, np.ndarray]:
    rows = (line.split(":") for line in KITTI_CALIB.read_text().splitlines() if line.strip())
    return {k: np.array(v.split(), dtype=float) for k, v in rows}


def test_kitti_matches_the_devkit_projection_exactly() -> None:
    bundle = import_calibration(KITTI_CALIB, "kitti", "kitti-car", "2011_09_26", 0)
    cam = find_camera(bundle, "image_2")
    with Image.open(REAL / "kitti" / "image_2" / "000000.png") as image:
        assert (cam.width_px, cam.height_px) == image.size == (1224, 370)
    raw = kitti_raw()
    p2, r0 = raw["P2"].reshape(3, 4), raw["R0_rect"].reshape(3, 3)
    tr = np.vstack([raw["Tr_velo_to_cam"].reshape(3, 4), [0, 0, 0, 1]])
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (p2[0, 0], p2[1, 1], p2[0, 2], p2[1, 2])
    velo = np.fromfile(REAL / "kitti" / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    velo = velo[velo[:, 0] > 2.0].astype(np.float64)
    # The KITTI devkit formula: x_img = P2 · R0_rect · Tr_velo_to_cam · x_velo.
    rect = (r0 @ (velo @ tr[:3, :3].T + tr[:3, 3]).T).T
    hom = np.hstack([rect, np.ones((len(rect), 1))]) @ p2.T
    devkit_uv = hom[:, :2] / hom[:, 2:]
    ours = project_points(transform_points(sensor_pose(bundle, "velodyne"), velo), cam,
                          sensor_pose(bundle, "image_2"))
    # Our route goes through the IMU vehicle frame and unit quaternions; it must agree to well below
    # a pixel (the file's rotations are orthonormal to ~1e-6, which bounds the difference).
    assert np.abs(ours.uv_px - devkit_uv).max() < 0.05
    vehicle_T_velo = sensor_pose(bundle, "velodyne")
    imu_to_velo = np.vstack([raw["Tr_imu_to_velo"].reshape(3, 4), [0, 0, 0, 1]])
    np.testing.assert_allclose(vehicle_T_velo, np.linalg.inv(imu_to_velo), atol=1e-5)
    optical_axis = sensor_pose(bundle, "image_2")[:3, :3] @ [0.0, 0.0, 1.0]
    assert optical_axis[0] > 0.99  # the camera looks along the IMU's +x (forward)


@pytest.mark.parametrize(("text", "message"), [
    ("P2: 1 2 3\n", "P2 needs 12 finite numbers, got 3"),
    ("P2: 1 0 1 0 0 1 1 0 0 0 1 0\n", "missing R0_rect"),
    ("garbage line\n", "expected 'KEY: numbers'"),
    ("P2: 1 0 1 0 0 1 1 0 0 0 1 x\n", "could not convert"),
])
def test_kitti_broken_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "000000.txt"
    path.write_text(text)
    with pytest.raises(CalibrationFormatError, match=message):
        import_calibration(path, "kitti", "kitti-car", "v1", 0)


def test_kitti_wrong_sizes_and_non_pinhole_p2_are_refused(tmp_path: Path) -> None:
    lines = KITTI_CALIB.read_text().splitlines()
    path = tmp_path / "000000.txt"
    path.write_text("\n".join(line + " 1.0" if line.startswith("R0_rect") else line for line in lines))
    with pytest.raises(CalibrationFormatError, match="R0_rect needs 9 finite numbers, got 10"):
        import_calibration(path, "kitti", "kitti-car", "v1", 0)
    skewed = [line.replace("P2: 7.070493000000e+02 0.000000000000e+00", "P2: 7.070493000000e+02 5.0")
              for line in lines]
    path.write_text("\n".join(skewed))
    with pytest.raises(CalibrationFormatError, match="not a rectified pinhole"):
        import_calibration(path, "kitti", "kitti-car", "v1", 0)


def test_nuscenes_cameras_and_lidar_match_the_info_file() -> None:
    bundle = import_calibration(NUSCENES_PKL, "nuscenes", "nusc-car", "n015", 1_532_402_927_000_000_000)
    info = safe_load(NUSCENES_PKL.read_bytes())["data_list"][0]
    assert {c.sensor_id for c in bundle.cameras} == NUSCENES_CAMERAS
    assert {e.sensor_id for e in bundle.extrinsics} == {*NUSCENES_CAMERAS, "LIDAR_TOP"}
    for cam in bundle.cameras:
        meta = info["images"][cam.sensor_id]
        with Image.open(REAL / "nuscenes" / meta["img_path"]) as image:
            assert (cam.width_px, cam.height_px) == image.size
        k = np.asarray(meta["cam2img"])
        assert (cam.fx, cam.fy, cam.cx, cam.cy) == (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        np.testing.assert_allclose(sensor_pose(bundle, cam.sensor_id), meta["cam2ego"], atol=1e-6)
    np.testing.assert_allclose(sensor_pose(bundle, "LIDAR_TOP"), info["lidar_points"]["lidar2ego"], atol=1e-6)
    # mmdetection3d's lidar2cam also folds in the ego motion between the LiDAR (t) and CAM_FRONT
    # (t - 35 ms) exposures; our static chain lidar→ego→camera may differ from it by that motion only:
    # a shift of ≤ 0.6 m (17 m/s × 35 ms) and a rotation under 0.5°.
    static = se3_inverse(sensor_pose(bundle, "CAM_FRONT")) @ sensor_pose(bundle, "LIDAR_TOP")
    delta = static @ np.linalg.inv(np.asarray(info["images"]["CAM_FRONT"]["lidar2cam"]))
    assert np.linalg.norm(delta[:3, 3]) < 0.6
    assert np.degrees(np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1))) < 0.5


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_the_unpickler_never_runs_code_from_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"data_list": [_Exploit(marker)]}, protocol=2))
    with pytest.raises(CalibrationFormatError, match=r"references (posix|os|nt)\.system"):
        import_calibration(path, "nuscenes", "nusc-car", "v1", 0)
    assert not marker.exists()
    with pytest.raises(CalibrationFormatError, match="object dtypes are refused"):
        safe_load(pickle.dumps(np.array([1, "a"], dtype=object)))
    with pytest.raises(CalibrationFormatError, match="not a readable pickle"):
        safe_load(b"\x80\x04not a pickle")
    plain = safe_load(pickle.dumps({"m": np.eye(3, dtype=np.float32), "s": np.float64(2.5)}))
    assert plain["m"].dtype == np.float32 and plain["s"] == 2.5


def test_nuscenes_file_whose_calibration_changes_is_refused(tmp_path: Path) -> None:
    doc = safe_load(NUSCENES_PKL.read_bytes())
    second = {**doc["data_list"][0], "lidar_points": {
        **doc["data_list"][0]["lidar_points"], "lidar2ego": np.eye(4).tolist()}}
    doc["data_list"].append(second)
    path = tmp_path / "two.pkl"
    path.write_bytes(pickle.dumps(doc, protocol=2))
    with pytest.raises(CalibrationFormatError, match="calibration changes at sample 1"):
        import_calibration(path, "nuscenes", "nusc-car", "v1", 0)
    doc["data_list"] = [{"images": {"CAM_FRONT": {"cam2img": [[1, 0]], "cam2ego": np.eye(4)}},
                         "lidar_points": {"lidar2ego": np.eye(4)}}]
    path.write_bytes(pickle.dumps(doc, protocol=2))
    with pytest.raises(CalibrationFormatError, match=r"cam2img: expected a finite 3x3 matrix"):
        import_calibration(path, "nuscenes", "nusc-car", "v1", 0)


def test_av2_imports_every_camera_and_both_lidars() -> None:
    bundle = import_calibration(AV2_LOG, "av2", "av2-car", "7fab2350", 0)
    assert len(bundle.cameras) == 9 and {c.sensor_id for c in bundle.cameras} >= {
        "ring_front_center", "ring_rear_left", "stereo_front_right"}
    assert {"up_lidar", "down_lidar"} <= {e.sensor_id for e in bundle.extrinsics}
    for ext in bundle.extrinsics:
        rotation = sensor_pose(bundle, ext.sensor_id)[:3, :3]
        assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    front = sensor_pose(bundle, "ring_front_center")
    assert front[:3, :3] @ [0.0, 0.0, 1.0] == pytest.approx([1.0, 0.0, 0.0], abs=0.01)
    assert front[0, 3] > 1.0  # mounted ahead of the rear axle
    rear = sensor_pose(bundle, "ring_rear_left")[:3, :3] @ [0.0, 0.0, 1.0]
    assert rear[0] < -0.8
    center = find_camera(bundle, "ring_front_center")
    assert (center.width_px, center.height_px) == (1550, 2048)  # portrait
    assert center.distortion[2:4] == (0.0, 0.0) and center.distortion[0] < 0
    # A point 20 m straight ahead lands near the principal point of the front camera.
    hit = project_points(np.array([[20.0, 0.0, 1.4]]), center, front)
    assert hit.in_bounds[0] and abs(hit.uv_px[0, 0] - center.cx) < 10
    # The calibration/ directory itself is accepted as well as the log directory.
    assert import_calibration(AV2_LOG / "calibration", "av2", "av2-car", "7fab2350", 0) == bundle


def test_av2_broken_directory(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFormatError, match=r"egovehicle_SE3_sensor\.feather: cannot read"):
        import_calibration(tmp_path, "av2", "av2-car", "v1", 0)
    shutil.copy(AV2_LOG / "calibration" / "egovehicle_SE3_sensor.feather", tmp_path)
    (tmp_path / "intrinsics.feather").write_bytes(b"ARROW1 but not really")
    with pytest.raises(CalibrationFormatError, match=r"intrinsics\.feather: cannot read"):
        import_calibration(tmp_path, "av2", "av2-car", "v1", 0)
    shutil.copy(AV2_LOG / "calibration" / "egovehicle_SE3_sensor.feather", tmp_path / "intrinsics.feather")
    with pytest.raises(CalibrationFormatError, match=r"missing columns \['fx_px'"):
        import_calibration(tmp_path, "av2", "av2-car", "v1", 0)


def test_import_calibration_entry_point(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFormatError, match=r"unknown calibration format 'waymo'.*kitti, nuscenes, av2"):
        import_calibration(KITTI_CALIB, "waymo", "car", "v1", 0)
    with pytest.raises(CalibrationFormatError, match="calibration not found"):
        import_calibration(tmp_path / "nope.txt", "kitti", "car", "v1", 0)
    bundles = [import_calibration(KITTI_CALIB, "kitti", "car", "kitti", 100, 200),
               import_calibration(NUSCENES_PKL, "nuscenes", "car", "nusc", 200),
               import_calibration(AV2_LOG, "av2", "car", "av2", 300)]
    db = open_db("sqlite", sqlite_path=str(tmp_path / "calib.db"))
    registry = CalibrationRegistry(db)
    for b in bundles:
        assert CalibrationBundle.decode(b.encode()) == b
        registry.add(b)
    assert registry.valid_at("car", 150).version == "kitti"
    assert registry.valid_at("car", 250).valid_to_ns == 300
    assert find_camera(registry.valid_at("car", 10**18), "ring_side_left").width_px == 2048
    with pytest.raises(CalibrationNotFound, match="no camera 'image_2'"):
        find_camera(registry.valid_at("car", 301), "image_2")
    db.close()


def test_avdata_format_round_trips_with_the_command_line_identity(tmp_path: Path) -> None:
    """What `avdata-sim calibration` writes: vehicle, version and validity come from the command line."""
    from shared.calibration import CameraIntrinsics, SensorExtrinsics

    written = CalibrationBundle(
        "whatever", "v0", 0, None, cameras=(CameraIntrinsics("camera/front", 640, 360, 500.0, 500.0, 320.0, 180.0),),
        extrinsics=(SensorExtrinsics("camera/front", (0.5, -0.5, 0.5, -0.5), (1.5, 0.0, 1.4)),
                    SensorExtrinsics("lidar/top", (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.8))))
    path = tmp_path / "rig.msgpack"
    path.write_bytes(written.encode())
    bundle = import_calibration(path, "avdata", "car-9", "rig-7", 1_000, 2_000)
    assert (bundle.vehicle_id, bundle.version, bundle.valid_from_ns, bundle.valid_to_ns) == ("car-9", "rig-7", 1_000, 2_000)
    assert bundle.cameras and {e.sensor_id for e in bundle.extrinsics} >= {c.sensor_id for c in bundle.cameras}
    (tmp_path / "bad.msgpack").write_bytes(b"\x93\x01\x02")
    with pytest.raises(CalibrationFormatError, match="not an avdata calibration bundle"):
        import_calibration(tmp_path / "bad.msgpack", "avdata", "car-9", "rig-7", 0)
