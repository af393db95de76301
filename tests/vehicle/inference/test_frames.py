"""Frame sources for a fit: image directories and a real MCAP snapshot's H.265 camera channel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.messages import SensorMessage
from shared.snapshot import SnapshotWriter
from vehicle.errors import FrameSourceError
from vehicle.inference.frames import DecodeCounts, camera_topics, image_paths, read_image, snapshot_frames, views
from vehicle.inference.model import Detector, DetectorConfig
from vehicle.inference.reference import load_reference

from .domains import KITTI_000000, KITTI_FIT, KITTI_HELD_BACK, NUSCENES, h265_messages, images, run_cli


def write_snapshot(path: Path, camera: list[SensorMessage]) -> Path:
    """A finished snapshot with ``camera`` and an IMU channel that a fit must ignore."""
    writer = SnapshotWriter(path)
    imu = [SensorMessage("imu", "imu0", m.t_sensor_ns, 0, i, "imu_v1", b"\x00" * 24) for i, m in enumerate(camera)]
    for m in sorted(camera + imu, key=lambda m: m.t_sensor_ns):
        writer.add(m, m.t_sensor_ns)
    writer.finish(snapshot_id="s1", vehicle_id="car-1", created_ns=0, start_ns=camera[0].t_sensor_ns,
                  end_ns=camera[-1].t_sensor_ns, triggers=(), software_version="t", model_version="t",
                  calibration_version="t")
    return path


@pytest.fixture(scope="module")
def kitti_h265() -> list[SensorMessage]:
    """The 16 fit frames of KITTI as one H.265 stream (keyframe every 8), cropped to 1238x374."""
    return h265_messages([bgr for _, bgr in images(KITTI_FIT)], "camera/front", gop=8)


def test_image_directory_in_name_order_and_bad_files(tmp_path: Path) -> None:
    paths = image_paths(KITTI_FIT)
    assert [p.name for p in paths] == [f"{i:06d}.jpeg" for i in range(1, 17)]
    assert read_image(paths[0]).shape == (375, 1242, 3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(FrameSourceError, match=r"broken\.jpg: not a decodable image"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(FrameSourceError, match="missing: not a directory of frames"):
        image_paths(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameSourceError, match=r"no \.jpg, \.jpeg or \.png"):
        image_paths(tmp_path / "empty")


def test_views_are_the_frame_its_mirror_and_corner_crops() -> None:
    bgr = read_image(KITTI_000000 / "000000.png")
    assert len(views(bgr, "none")) == 1
    flip = views(bgr, "flip")
    np.testing.assert_array_equal(flip[1], bgr[:, ::-1])
    ten = views(bgr, "flip_crops")
    assert len(ten) == 10 and ten[2].shape == (int(370 * 0.85), int(1224 * 0.85), 3)
    np.testing.assert_array_equal(ten[2], bgr[: ten[2].shape[0], : ten[2].shape[1]])
    assert all(v.flags["C_CONTIGUOUS"] for v in ten)
    with pytest.raises(ValueError, match="augment must be one of"):
        views(bgr, "rotate")


def test_snapshot_camera_frames_decode_as_the_car_decodes_them(tmp_path: Path, kitti_h265: list[SensorMessage]) -> None:
    snap = write_snapshot(tmp_path / "drive.mcap", kitti_h265)
    assert camera_topics(snap) == {"camera/front": 16}
    frames = list(snapshot_frames(snap))
    assert [f.frame_id for f in frames] == [f"drive.mcap:camera/front:{i}" for i in range(16)]
    assert frames[0].bgr.shape == (374, 1238, 3)
    original = images(KITTI_FIT)[3][1][:374, :1238].astype(np.float64)
    assert np.mean(np.abs(frames[3].bgr - original)) < 6.0  # crf 18: close to the JPEG it came from
    assert [f.frame_id for f in snapshot_frames(snap, every=4)] == [
        f"drive.mcap:camera/front:{i}" for i in (0, 4, 8, 12)]


def test_a_stream_without_its_keyframe_is_counted_not_fatal(tmp_path: Path, kitti_h265: list[SensorMessage]) -> None:
    snap = write_snapshot(tmp_path / "late.mcap", kitti_h265[1:])  # joined after the first keyframe
    counts = DecodeCounts()
    got = [f.frame_id for f in snapshot_frames(snap, counts=counts)]
    assert got == [f"late.mcap:camera/front:{i}" for i in range(8, 16)]
    assert (counts.awaiting_keyframe, counts.errors) == (7, 0)
    with pytest.raises(FrameSourceError, match=r"no H\.265/H\.264 channel under 'lidar/'"):
        list(snapshot_frames(snap, "lidar/"))
    (tmp_path / "junk.mcap").write_bytes(b"\x89MCAP0\r\n garbage")
    with pytest.raises(FrameSourceError, match=r"junk\.mcap: not a readable snapshot"):
        camera_topics(tmp_path / "junk.mcap")


def test_fit_from_a_snapshot_separates_the_domains(tmp_path: Path, kitti_h265: list[SensorMessage]) -> None:
    """``ood fit --snapshot``: the reference of the recorded H.265 KITTI frames keeps the held-back
    KITTI frames (JPEG/PNG, never recorded) below its threshold and the nuScenes frames above."""
    snap = write_snapshot(tmp_path / "drive.mcap", kitti_h265)
    out = tmp_path / "snap.avood"
    done = run_cli("ood", "fit", "--snapshot", str(snap), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 16 and summary["sources"] == ["snapshot:drive.mcap"]
    assert summary["skipped"] == {"unreadable_images": 0, "undecodable_access_units": 0, "awaiting_keyframe": 0}
    ref = load_reference(out)
    assert ref.fit.frame_ids[0] == "drive.mcap:camera/front:0"
    detector = Detector(DetectorConfig(provider="cpu"))
    held = [ref.score(detector.detect(bgr).embedding) for _, bgr in images(KITTI_HELD_BACK, KITTI_000000)]
    other = [ref.score(detector.detect(bgr).embedding) for _, bgr in images(NUSCENES)]
    assert max(held) < ref.threshold.value < min(other), (held, ref.threshold.value, other)
