"""A real drive for the enrichment service's tests and benchmark, ingested through the real pipeline.

Camera: real KITTI frames (``kitti_tiny/held_back`` and frame 000000, every second pixel), real
H.265 from PyAV at 10 Hz with a keyframe every second, and a stretch of the simulator's rendered
frames (out of the KITTI domain). ``model/scores``: the vehicle's own YOLOX-nano
(:class:`vehicle.inference.Detector`) on those frames at 2 Hz, scored against an OOD reference
fitted on ``kitti_tiny/fit`` (and the frames flipped) with the vehicle's fitter, so detections, embeddings and ``ood_ratio``
are what the car would publish. LiDAR: the real KITTI sweep (every ``point_step``-th return) with
the real KITTI calibration, so the ingest writes ``calibrated.mcap``. GNSS follows a lane of the
real Lanelet2 example map of Karlsruhe (or any place given); vehicle state at 20 Hz with a hard
brake at 75% of the drive.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np

from cloud_ingest.calibration.importers import import_calibration
from cloud_ingest.calibration.registry import CalibrationRegistry
from cloud_ingest.pipeline import IngestDeps, ingest_upload
from cloud_ingest.storage.metadata.protocol import UploadRecord
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.objects.protocol import ObjectStore
from downstream.enrich.maps.lanelet2 import load_lanelet2
from shared.messages import SensorMessage
from shared.model_scores import ModelScores
from shared.payloads import LIDAR_DTYPE, GnssFix, VehicleState, encode_small
from shared.segment import Segment
from tests.cloud_ingest.conftest import NS, T0_NS, write_snapshot
from tests.downstream.enrich.real_data import KITTI, LANELET2_OSM, REAL
from tests.vehicle.inference.domains import images, synthetic_frames
from vehicle.inference.fitting import fit_reference
from vehicle.inference.frames import views
from vehicle.inference.model import Detector, DetectorConfig, FrameResult
from vehicle.inference.reference import OodReference

#: 2023-11-14 11:00 UTC: daylight in Karlsruhe, as the KITTI frames show.
DAY_T0_NS = 1_699_959_600 * NS
CAMERA_HZ, SCORES_EVERY, STATE_HZ, GNSS_HZ = 10, 5, 20, 5
SIZE = (620, 186)  # half of KITTI's 1242 x 375, even sides for 4:2:0
LANE = "45154"  # a 194 m urban road lanelet of the Karlsruhe example map


@dataclass(frozen=True)
class Drive:
    """Knobs of one drive; times in seconds."""

    duration_s: float = 20.0
    speed_mps: float = 8.0
    lidar_hz: int = 2
    point_step: int = 8
    ood_from_s: float = 8.0  # rendered (out-of-domain) frames from here ...
    ood_to_s: float = 10.0  # ... to here
    on_map: bool = True  # GNSS along the Karlsruhe lane, else in the open sea near 0°N 0°E


@cache
def detector() -> Detector:
    return Detector(DetectorConfig())


@cache
def reference() -> OodReference:
    """The vehicle's fitter on ``kitti_tiny/fit`` (``flip`` views), as ``avdata-vehicle ood fit`` does."""
    det = detector()
    frames = images(REAL / "kitti_tiny" / "fit")
    groups = [np.stack([det.detect(v).embedding for v in views(bgr, "flip")]) for _, bgr in frames]
    return fit_reference(groups, [n for n, _ in frames], det.embedding_spec, augment="flip").reference


@cache
def _camera_frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    kitti = [bgr for _, bgr in images(REAL / "kitti_tiny" / "held_back", KITTI / "image_2")]
    rendered = [bgr for _, bgr in synthetic_frames()]
    w, h = SIZE

    def small(bgr: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(bgr[::2, ::2][:h, :w])
        pad = np.zeros((h, w, 3), np.uint8)
        pad[: out.shape[0], : out.shape[1]] = out
        return pad

    return [small(f) for f in kitti], [small(f) for f in rendered]


def _h265(frames: list[np.ndarray]) -> list[tuple[bytes, bool]]:
    enc = av.CodecContext.create("libx265", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, CAMERA_HZ), Fraction(CAMERA_HZ)
    enc.options = {"x265-params": f"repeat-headers=1:bframes=0:log-level=none:keyint={CAMERA_HZ}:"
                                  f"min-keyint={CAMERA_HZ}", "preset": "ultrafast", "tune": "zerolatency"}
    out = []
    for i, bgr in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]
    assert len(out) == len(frames)
    return out


def lane_track(n: int, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` WGS-84 fixes ``spacing_m`` apart along the Karlsruhe lane :data:`LANE`."""
    m = load_lanelet2(LANELET2_OSM)
    lane = next(la for la in m.lanes if la.lane_id == LANE)
    c = np.asarray(lane.centre_m, dtype=np.float64)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(c, axis=0).T))])
    at = np.minimum(np.arange(n) * spacing_m, s[-1])
    xy = np.stack([np.interp(at, s, c[:, 0]), np.interp(at, s, c[:, 1])], axis=1)
    assert m.projection is not None
    return m.projection.to_geo(xy)


def kitti_points(step: int) -> bytes:
    raw = np.fromfile(KITTI / "velodyne" / "000000.bin", dtype="<f4").reshape(-1, 4)[::step]
    pts = np.zeros(raw.shape[0], LIDAR_DTYPE)
    pts["x"], pts["y"], pts["z"], pts["intensity"] = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3] * 255
    pts["ring"] = np.arange(raw.shape[0]) % 64
    return pts.tobytes()


@cache
def _messages(d: Drive) -> tuple[SensorMessage, ...]:
    kitti, rendered = _camera_frames()
    n_cam = int(d.duration_s * CAMERA_HZ)
    which = [("rendered", i % len(rendered)) if d.ood_from_s <= i / CAMERA_HZ < d.ood_to_s
             else ("kitti", i % len(kitti)) for i in range(n_cam)]
    frames = [(rendered if src == "rendered" else kitti)[k] for src, k in which]
    units = _h265(frames)
    det, ref = detector(), reference()
    results: dict[tuple[str, int], FrameResult] = {}  # the drive repeats its frames: each is scored once
    msgs: list[SensorMessage] = []
    for i, ((data, key), bgr) in enumerate(zip(units, frames, strict=True)):
        t = T0_NS + i * NS // CAMERA_HZ
        msgs.append(SensorMessage("camera/front", "image_2", t, 0, i, "h265", data, keyframe=key))
        if i % SCORES_EVERY == 0:
            r = results.get(which[i]) or results.setdefault(which[i], det.detect(bgr))
            scores = ModelScores("camera/front", i, t, r.image_w_px, r.image_h_px, "yolox_nano", det.provider,
                                 r.inference_ns, r.uncertainty.entropy, r.uncertainty.margin,
                                 r.uncertainty.least_confidence, ref.score(r.embedding), r.detections, r.embedding,
                                 ood_threshold=ref.threshold.value, ood_reference_id=ref.reference_id,
                                 ood_reference_version=ref.version)
            msgs.append(scores.to_message("model/scores", "yolox_nano", i // SCORES_EVERY))
    points = kitti_points(d.point_step)
    for i in range(int(d.duration_s * d.lidar_hz)):
        msgs.append(SensorMessage("lidar/top", "velodyne", T0_NS + i * NS // d.lidar_hz + 1, 0, i,
                                  "lidar_points_v1", points))
    n_gnss = int(d.duration_s * GNSS_HZ)
    if d.on_map:
        lat, lon = lane_track(n_gnss, d.speed_mps / GNSS_HZ)
    else:
        lat, lon = np.full(n_gnss, 0.5), np.linspace(-30.0, -29.99, n_gnss)
    for i in range(n_gnss):
        msgs.append(SensorMessage("gnss", "gnss0", T0_NS + i * NS // GNSS_HZ + 2, 0, i, "gnss_v1",
                                  encode_small(GnssFix(float(lat[i]), float(lon[i]), 115.0, 1, 1.5))))
    for i in range(int(d.duration_s * STATE_HZ)):
        accel = -6.0 if abs(i / STATE_HZ - d.duration_s * 0.75) < 0.5 else 0.0
        x = d.speed_mps * i / STATE_HZ
        msgs.append(SensorMessage("vehicle_state", "can0", T0_NS + i * NS // STATE_HZ + 3, 0, i, "vehicle_state_v1",
                                  encode_small(VehicleState(x, 0.0, 0.0, d.speed_mps, accel, 0.0, 0.0, True))))
    return tuple(sorted(msgs, key=lambda m: m.t_sensor_ns))


def drive_messages(d: Drive, t0_ns: int = DAY_T0_NS) -> list[SensorMessage]:
    """The drive's messages, time-sorted, shifted to start at ``t0_ns`` (a new start is a new snapshot)."""
    shift = t0_ns - T0_NS
    return [replace(m, t_sensor_ns=m.t_sensor_ns + shift) for m in _messages(d)]


def write_drive(path: Path, d: Drive, vehicle_id: str = "car-1", t0_ns: int = DAY_T0_NS) -> str:
    """Write the drive as a finished snapshot with a hard-brake trigger; its sha256."""
    return write_snapshot(path, drive_messages(d, t0_ns), vehicle_id=vehicle_id)


def register_kitti_calibration(db: SQLMetadataDB, vehicle_id: str) -> None:
    """The real KITTI calibration (velodyne, image_2, IMU) as ``vehicle_id``'s bundle, valid from 2020."""
    CalibrationRegistry(db).add(import_calibration(KITTI / "calib" / "000000.txt", "kitti", vehicle_id, "kitti-v1",
                                                   1_577_836_800 * NS))


def ingest(db: SQLMetadataDB, store: ObjectStore, work: Path, snapshot: Path, sha: str,
           vehicle_id: str = "car-1") -> list[Segment]:
    """The snapshot through :func:`cloud_ingest.pipeline.ingest_upload` (calibrated streams inline)."""
    copy = work / f"{uuid.uuid4().hex}.part"
    shutil.copyfile(snapshot, copy)
    rec = UploadRecord(uuid.uuid4().hex, vehicle_id, snapshot.stat().st_size, 0, sha, "s", "f", "in_progress", 1,
                       2**62)
    db.create_upload(rec)
    res = ingest_upload(copy, rec, IngestDeps(db, store, work / "quarantine", CalibrationRegistry(db), 0))
    return [Segment.decode(db.get_segment(sid).record) for sid in res.segment_ids]  # type: ignore[union-attr]
