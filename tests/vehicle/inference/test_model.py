"""The real YOLOX-nano model on real KITTI and nuScenes frames, through ONNX Runtime's CPU provider."""

from __future__ import annotations

import pickle
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
import pytest

from shared.yolox import iou_one_to_many, letterbox
from vehicle.errors import InvalidFrame, ModelLoadError
from vehicle.inference.drift import DriftMonitor
from vehicle.inference.model import (
    MODELS_DIR,
    Detection,
    Detector,
    DetectorConfig,
    choose_providers,
    coco_class_names,
    with_extra_outputs,
)

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"
KITTI_IMAGE = REAL / "kitti" / "image_2" / "000000.png"
KITTI_LABELS = REAL / "kitti" / "label_2" / "000000.txt"
NUSCENES = REAL / "nuscenes"
NUSCENES_INFO = NUSCENES / "n015-2018-07-24-11-22-45+0800.pkl"
VEHICLES = {"car", "truck", "bus"}
Labelled = dict[str, tuple[np.ndarray, list[tuple[str, np.ndarray, float]]]]


def load_bgr(path: Path) -> np.ndarray:
    """Decode a PNG/JPEG with PyAV to an (H, W, 3) uint8 BGR array."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    return frame.to_ndarray(format="bgr24")


def nuscenes_frames() -> Labelled:
    """Camera name → (BGR image, [(category, box xyxy px, depth m)]) from the mmdet3d info file."""
    with NUSCENES_INFO.open("rb") as fh:
        info = pickle.load(fh)
    names = {v: k for k, v in info["metainfo"]["categories"].items()}
    sample = info["data_list"][0]
    out = {}
    for cam, meta in sample["images"].items():
        labels = [(names[i["bbox_label"]], np.asarray(i["bbox"], dtype=np.float32), float(i["depth"]))
                  for i in sample["cam_instances"][cam]]
        out[cam] = (load_bgr(NUSCENES / meta["img_path"]), labels)
    return out


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectorConfig(provider="cpu", intra_op_threads=1))


@pytest.fixture(scope="module")
def nuscenes() -> Labelled:
    return nuscenes_frames()


@pytest.fixture(scope="module")
def real_frames(nuscenes: Labelled) -> list[np.ndarray]:
    """KITTI 000000 then the six nuScenes cameras."""
    return [load_bgr(KITTI_IMAGE)] + [bgr for bgr, _ in nuscenes.values()]


def _best_iou(box: np.ndarray, detections: tuple[Detection, ...], classes: set[str]) -> float:
    boxes = np.array([d.box_xyxy_px for d in detections if d.class_name in classes], dtype=np.float32)
    return float(iou_one_to_many(box, boxes).max()) if boxes.size else 0.0


def test_kitti_pedestrian_is_found(detector: Detector) -> None:
    """Every clearly visible KITTI object (occluded 0, truncated < 0.15, box >= 40 px tall) of a
    class the COCO model knows (Car/Van/Truck → car/truck/bus, Pedestrian → person) is matched by
    a detection of that kind with IoU >= 0.5, the usual detection-matching threshold; no
    detection scoring >= 0.5 is left unmatched. Frame 000000 has one such object, a walking
    pedestrian 165 px tall (the parked bicycles are not labelled in KITTI and the model scores
    them below the 0.3 detection threshold)."""
    kinds = {"Car": VEHICLES, "Van": VEHICLES, "Truck": VEHICLES, "Pedestrian": {"person"}}
    result = detector.detect(load_bgr(KITTI_IMAGE))
    labels = []
    for line in KITTI_LABELS.read_text().splitlines():
        f = line.split()
        box = np.array([float(v) for v in f[4:8]], dtype=np.float32)
        if f[0] in kinds and float(f[1]) < 0.15 and int(f[2]) == 0 and box[3] - box[1] >= 40:
            labels.append((kinds[f[0]], box))
    assert labels, "the fixture should hold at least one clearly visible object"
    for classes, box in labels:
        assert _best_iou(box, result.detections, classes) >= 0.5, (box, result.detections)
    unmatched = [d for d in result.detections if d.score >= 0.5
                 and max(float(iou_one_to_many(np.array(d.box_xyxy_px), b[None])[0]) for _, b in labels) < 0.5]
    assert unmatched == []
    assert (result.image_w_px, result.image_h_px) == (1224, 370)


def test_nuscenes_vehicles_are_found(nuscenes: Labelled) -> None:
    """Across the six nuScenes cameras, every car/truck/bus box (the mmdet3d 2D projection of the
    3D label) that is >= 40 px tall, within 40 m and not cut by the image border is matched by a
    car/truck/bus detection with IoU >= 0.5 and score >= 0.25. Five such vehicles exist (the
    delivery truck and three cars ahead, a car behind); all match at IoU 0.6-0.8 with scores
    0.35-0.68. Recall is read at 0.25, a little under the 0.3 default, because the car behind
    scores 0.35 and a resize filter or FFmpeg version moves such scores by a few hundredths.
    Beyond 40 m, or cut by the border, the
    1600 px frame shrunk 3.85× into the 416 px input leaves YOLOX-nano too few pixels, and it
    misses them; it also misses most nuScenes pedestrians, so they are not asserted here.
    At most one detection scoring >= 0.5 may overlap no label at all (IoU < 0.3 with every box of
    every category): CAM_BACK_LEFT's W-beam guard rail is read as a bench at 0.7."""
    detector = Detector(DetectorConfig(provider="cpu", score_threshold=0.25))
    matched, unmatched_confident = 0, []
    for cam, (bgr, labels) in nuscenes.items():
        h, w = bgr.shape[:2]
        result = detector.detect(bgr)
        for category, box, depth in labels:
            cut = box[0] <= 1 or box[1] <= 1 or box[2] >= w - 1 or box[3] >= h - 1
            if category in VEHICLES and box[3] - box[1] >= 40 and depth <= 40 and not cut:
                assert _best_iou(box, result.detections, VEHICLES) >= 0.5, (cam, category, box)
                matched += 1
        all_boxes = np.stack([b for _, b, _ in labels]) if labels else np.zeros((0, 4), np.float32)
        unmatched_confident += [
            (cam, d) for d in result.detections
            if d.score >= 0.5 and (not len(all_boxes)
                                   or iou_one_to_many(np.array(d.box_xyxy_px), all_boxes).max() < 0.3)]
    assert matched == 5
    assert len(unmatched_confident) <= 1, unmatched_confident


def test_uncertainty_is_higher_on_noise_than_on_real_frames(
    detector: Detector, real_frames: list[np.ndarray]
) -> None:
    real = [detector.detect(f) for f in real_frames]
    noise = [detector.detect(noise_image(370, 1224, seed=1)), detector.detect(noise_image(900, 1600, seed=2))]
    assert max(r.uncertainty.entropy for r in real) < min(n.uncertainty.entropy for n in noise)
    for r in real + noise:
        u = r.uncertainty
        assert 0.0 <= u.entropy <= 1.0 and 0.0 <= u.margin <= 1.0 and 0.0 <= u.least_confidence <= 1.0
    # The frame with a clear detection is the most confident one.
    assert real[0].uncertainty.least_confidence < min(n.uncertainty.least_confidence for n in noise)


def test_embedding_is_deterministic_unit_norm_512(detector: Detector) -> None:
    bgr = load_bgr(KITTI_IMAGE)
    first, second = detector.detect(bgr).embedding, detector.detect(bgr).embedding
    assert first.shape == (512,) and first.dtype == np.float32
    assert float(np.linalg.norm(first)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(first, second)
    again = Detector(DetectorConfig(provider="cpu")).detect(bgr).embedding
    np.testing.assert_allclose(again, first, atol=1e-6)
    other = detector.detect(noise_image(370, 1224)).embedding
    assert float(first @ other) < 0.999  # it does depend on the image


def test_ood_score_of_noise_exceeds_held_out_real_frames(
    detector: Detector, real_frames: list[np.ndarray]
) -> None:
    """Leave-one-out over the seven real frames: fit on the other six (and their mirror images),
    then the held-out real frame must score lower than either noise image."""
    frames = real_frames
    emb = [detector.detect(f).embedding for f in frames]
    mirrored = [detector.detect(np.ascontiguousarray(f[:, ::-1])).embedding for f in frames]
    noise = [detector.detect(noise_image(370, 1224, 3)).embedding, detector.detect(noise_image(900, 1600, 4)).embedding]
    for i in range(len(frames)):
        ref = np.stack([e for j, e in enumerate(emb) if j != i] + [e for j, e in enumerate(mirrored) if j != i])
        scorer = DriftMonitor().fit(ref)
        held_out = scorer.score(emb[i])
        assert held_out < min(scorer.score(n) for n in noise), i


def test_extra_outputs_do_not_change_the_detections() -> None:
    plain = ort.InferenceSession(str(MODELS_DIR / "yolox_nano.onnx"), providers=["CPUExecutionProvider"])
    raw = (MODELS_DIR / "yolox_nano.onnx").read_bytes()
    extended = ort.InferenceSession(with_extra_outputs(raw, ("956", "990", "1024")),
                                    providers=["CPUExecutionProvider"])
    assert [o.shape for o in extended.get_outputs()] == [[1, 3549, 85], [1, 64, 52, 52], [1, 128, 26, 26],
                                                         [1, 256, 13, 13]]
    tensor, _ = letterbox(load_bgr(KITTI_IMAGE), 416)
    np.testing.assert_array_equal(plain.run(None, {"images": tensor})[0],
                                  extended.run(None, {"images": tensor})[0])


def test_provider_choice() -> None:
    cpu, cuda = "CPUExecutionProvider", "CUDAExecutionProvider"
    assert choose_providers("auto", [cpu]) == [cpu]
    assert choose_providers("auto", [cuda, cpu]) == [cuda, cpu]
    assert choose_providers("cpu", [cuda, cpu]) == [cpu]
    with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
        choose_providers("cuda", [cpu])


def test_detector_reports_the_provider_it_runs_on(detector: Detector) -> None:
    assert detector.provider in ort.get_available_providers()
    assert detector.provider == "CPUExecutionProvider"
    assert len(coco_class_names()) == 80 and coco_class_names()[2] == "car"


def test_bad_model_inputs_raise_typed_errors(tmp_path: Path, detector: Detector) -> None:
    with pytest.raises(ModelLoadError, match="cannot read model"):
        Detector(DetectorConfig(model_path=tmp_path / "missing.onnx"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError, match=r"broken\.onnx"):
        Detector(DetectorConfig(model_path=broken))
    with pytest.raises(ModelLoadError, match="nope"):
        Detector(DetectorConfig(feature_tensors=("nope",)))
    with pytest.raises(InvalidFrame):
        detector.detect(np.zeros((10, 10), dtype=np.uint8))


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="provider"):
        DetectorConfig(provider="tpu")
    with pytest.raises(ValueError, match="multiple of 32"):
        DetectorConfig(input_size_px=400)
    with pytest.raises(ValueError, match="score_threshold"):
        DetectorConfig(score_threshold=1.5)
