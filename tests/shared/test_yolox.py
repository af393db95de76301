"""YOLOX maths without the model: letterbox, grid decoding, NMS, uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from shared import yolox


def test_letterbox_keeps_aspect_and_pads_bottom_right_with_114() -> None:
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[..., 2] = 255  # pure red in BGR
    tensor, box = yolox.letterbox(img, 416)
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    assert box.ratio == pytest.approx(416 / 200) and (box.image_w_px, box.image_h_px) == (200, 100)
    # 100 px scaled by 2.08 is 208 rows of image, then padding.
    assert tensor[0, :, 207, 0].tolist() == [0.0, 0.0, 255.0]  # still BGR, 0-255, not normalised
    assert np.all(tensor[0, :, 208:, :] == 114.0)
    assert np.all(tensor[0, :, :208, :] != 114.0)


def test_letterbox_rejects_non_bgr_input() -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        yolox.letterbox(np.zeros((10, 10), dtype=np.uint8), 416)
    with pytest.raises(ValueError, match="uint8 BGR"):
        yolox.letterbox(np.zeros((10, 10, 3), dtype=np.float32), 416)


def test_anchor_grid_orders_strides_then_rows_then_columns() -> None:
    grid, step = yolox.anchor_grid(416)
    assert grid.shape == (3549, 2) and step.shape == (3549, 1)
    assert grid[1].tolist() == [1.0, 0.0]  # x advances first within a row
    assert grid[52].tolist() == [0.0, 1.0]
    assert step[2703, 0] == 8 and step[2704, 0] == 16 and step[-1, 0] == 32
    assert grid[-1].tolist() == [12.0, 12.0]


def _raw_with_one_box(anchor: int, offset: tuple[float, float], log_wh: tuple[float, float]) -> np.ndarray:
    raw = np.zeros((3549, 85), dtype=np.float32)
    raw[anchor, :2] = offset
    raw[anchor, 2:4] = log_wh
    raw[anchor, 4] = 0.9
    raw[anchor, 5 + 2] = 0.8
    return raw


def test_decode_applies_grid_and_stride() -> None:
    # Anchor 2704 + 26 * 3 + 5 is the stride-16 cell (x=5, y=3).
    anchor = 2704 + 26 * 3 + 5
    raw = _raw_with_one_box(anchor, (0.5, 0.25), (np.log(2.0), 0.0))
    assert not yolox.is_decoded(raw)
    out = yolox.decode(raw, 416)
    assert out[anchor, :4].tolist() == pytest.approx([(5 + 0.5) * 16, (3 + 0.25) * 16, 32.0, 16.0])
    assert out[anchor, 4] == pytest.approx(0.9)


def test_decode_leaves_an_already_decoded_output_alone() -> None:
    raw = np.zeros((3549, 85), dtype=np.float32)
    raw[:, :2] = yolox.anchor_grid(416)[0] * yolox.anchor_grid(416)[1]
    assert yolox.is_decoded(raw)
    assert yolox.decode(raw, 416) is raw


def test_decode_rejects_a_wrong_anchor_count() -> None:
    with pytest.raises(ValueError, match="anchors"):
        yolox.decode(np.zeros((100, 85), dtype=np.float32), 416)


def test_nms_suppresses_overlaps_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float32)
    keep = yolox.nms(boxes, np.array([0.9, 0.8, 0.7]), iou_threshold=0.5, max_keep=10)
    assert keep.tolist() == [0, 2]
    assert yolox.nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5, max_keep=1).tolist() == [0]


def test_classwise_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.zeros((3, 80), dtype=np.float32)
    scores[0, 2], scores[1, 2], scores[2, 0] = 0.9, 0.8, 0.6  # two cars, one person
    anchors, classes, kept = yolox.classwise_nms(boxes, scores, 0.3, 0.45, 100)
    assert anchors.tolist() == [0, 2] and classes.tolist() == [2, 0]
    assert kept.tolist() == pytest.approx([0.9, 0.6])
    empty = yolox.classwise_nms(boxes, scores, 0.95, 0.45, 100)
    assert all(a.size == 0 for a in empty)


def _candidates(n: int) -> np.ndarray:
    return np.array([[i * 50, 0, i * 50 + 40, 40] for i in range(n)], dtype=np.float32)


def test_uncertainty_is_zero_for_one_hot_classes_and_one_for_uniform_ones() -> None:
    boxes = _candidates(5)
    one_hot = np.zeros((5, 80), dtype=np.float32)
    one_hot[:, 3] = 1.0
    sure = yolox.uncertainty(boxes, np.ones(5, dtype=np.float32), one_hot, top_k=5, iou_threshold=0.45)
    assert sure.entropy == pytest.approx(0.0, abs=1e-6)
    assert sure.margin == pytest.approx(0.0) and sure.least_confidence == pytest.approx(0.0)
    flat = np.full((5, 80), 0.5, dtype=np.float32)
    lost = yolox.uncertainty(boxes, np.full(5, 0.2, dtype=np.float32), flat, top_k=5, iou_threshold=0.45)
    assert lost.entropy == pytest.approx(1.0)
    assert lost.margin == pytest.approx(1.0) and lost.least_confidence == pytest.approx(0.9)


def test_uncertainty_weights_candidates_by_their_score() -> None:
    boxes = _candidates(2)
    probs = np.zeros((2, 80), dtype=np.float32)
    probs[0, 0] = 1.0  # a confident, unambiguous person...
    probs[1, :] = 0.01  # ...and a weak anchor that spreads over every class
    unc = yolox.uncertainty(boxes, np.array([1.0, 0.01], dtype=np.float32), probs, 2, 0.45)
    weight_of_weak = 0.01 * 0.01 / (1.0 + 0.01 * 0.01)
    assert unc.entropy == pytest.approx(weight_of_weak, rel=1e-3)
