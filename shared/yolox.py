"""YOLOX maths, free of I/O: letterbox, grid/stride decoding, class-wise NMS, uncertainty.

The production detector's input and output format, shared because the vehicle (on-board
inference) and the cloud (offboard auto-labels, evaluation, shadow-mode comparison) must read the
same model the same way. Shapes follow the YOLOX export in ``shared/models``: the input is
``[1, 3, S, S]`` BGR float32 in 0-255 (no mean/std normalisation), padded with 114 at the bottom
and right; the output is
``[1, A, 5 + C]`` with ``A = sum((S / s) ** 2 for s in STRIDES)`` anchors ordered by stride, then
row, then column; columns are ``(cx, cy, w, h, objectness, class_0 .. class_{C-1})``.
Objectness and class columns are already sigmoid probabilities; box columns are raw grid offsets
and log sizes unless the export decoded them (:func:`is_decoded` tells which).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Output strides of the YOLOX heads (px); the input size must be a multiple of the largest.
STRIDES = (8, 16, 32)
PAD_VALUE = 114
#: swscale's filtered bilinear: it low-passes before decimating, so a 1600 px camera frame shrunk
#: ~4x into the input does not alias. FAST_BILINEAR (unfiltered, like OpenCV's INTER_LINEAR) saves
#: ~3 ms per 1600x900 frame but moved borderline nuScenes scores by a few hundredths either way.
RESIZE = "BILINEAR"


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the square model input.

    Attributes:
        ratio: input pixels per image pixel (the same on both axes).
        image_w_px, image_h_px: size of the original image.
    """

    ratio: float
    image_w_px: int
    image_h_px: int


def letterbox(bgr: np.ndarray, size_px: int) -> tuple[np.ndarray, Letterbox]:
    """Resize ``bgr`` (H, W, 3) uint8 keeping aspect, pad with 114 to ``size_px`` square.

    Returns the ``(1, 3, size_px, size_px)`` float32 tensor (BGR, 0-255, CHW) and the transform.
    Resizing is bilinear (:data:`RESIZE`), done by FFmpeg's swscale through PyAV.
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got {bgr.shape} {bgr.dtype}")
    h, w = bgr.shape[:2]
    ratio = min(size_px / h, size_px / w)
    new_w, new_h = max(1, int(w * ratio)), max(1, int(h * ratio))
    canvas = np.full((size_px, size_px, 3), PAD_VALUE, dtype=np.uint8)
    if (new_w, new_h) == (w, h):
        canvas[:h, :w] = bgr
    else:
        import av  # here, not at the top: configuration code reads STRIDES without loading PyAV

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        small = frame.reformat(width=new_w, height=new_h, format="bgr24", interpolation=RESIZE)
        canvas[:new_h, :new_w] = small.to_ndarray()
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    return tensor, Letterbox(ratio=ratio, image_w_px=w, image_h_px=h)


@lru_cache(maxsize=8)
def anchor_grid(size_px: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell origins ``(A, 2)`` as (x, y) cell indices and each anchor's stride ``(A, 1)`` in px."""
    grids, steps = [], []
    for stride in strides:
        n = size_px // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack((xs, ys), axis=2).reshape(-1, 2))
        steps.append(np.full((n * n, 1), stride))
    grid = np.concatenate(grids).astype(np.float32)
    step = np.concatenate(steps).astype(np.float32)
    grid.flags.writeable = False
    step.flags.writeable = False
    return grid, step


def is_decoded(raw: np.ndarray) -> bool:
    """Whether the box columns of ``raw`` (A, 5 + C) are already pixel boxes.

    Raw YOLOX offsets stay within a few cells of their anchor, so a centre beyond the largest
    stride can only be a decoded pixel coordinate (the last anchors of a decoded output sit near
    the far edge of the input).
    """
    return float(np.abs(raw[:, :2]).max()) > STRIDES[-1]


def decode(raw: np.ndarray, size_px: int) -> np.ndarray:
    """Boxes of ``raw`` (A, 5 + C) as ``(cx, cy, w, h)`` in input px, other columns unchanged."""
    if is_decoded(raw):
        return raw
    grid, step = anchor_grid(size_px)
    if raw.shape[0] != grid.shape[0]:
        raise ValueError(f"model output has {raw.shape[0]} anchors, expected {grid.shape[0]} "
                         f"for a {size_px} px input with strides {STRIDES}")
    out = raw.copy()
    out[:, :2] = (raw[:, :2] + grid) * step
    out[:, 2:4] = np.exp(np.minimum(raw[:, 2:4], 20.0)) * step
    return out


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` centre/size boxes to corner boxes."""
    half = boxes[:, 2:4] / 2
    return np.concatenate((boxes[:, :2] - half, boxes[:, :2] + half), axis=1)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against ``(N, 4)`` xyxy boxes."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy NMS over xyxy ``boxes``; indices kept, best score first, at most ``max_keep``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def classwise_nms(
    boxes_xyxy: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float, max_det: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-aware NMS over every (anchor, class) pair scoring above ``score_threshold``.

    ``scores`` is ``(A, C)`` (objectness × class probability). Boxes of different classes never
    suppress each other: each class's boxes are shifted by a class-dependent offset larger than
    any coordinate, so one greedy pass does every class at once.
    Returns ``(anchor_idx, class_idx, score)`` arrays, best score first.
    """
    anchor_idx, class_idx = np.nonzero(scores > score_threshold)
    if anchor_idx.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    cand_scores = scores[anchor_idx, class_idx]
    cand_boxes = boxes_xyxy[anchor_idx]
    offset = (float(np.abs(cand_boxes).max()) + 1.0) * class_idx[:, None].astype(np.float64)
    keep = nms(cand_boxes + offset, cand_scores, iou_threshold, max_det)
    return anchor_idx[keep], class_idx[keep], cand_scores[keep]


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Image-level uncertainty of the detector, each in [0, 1] (1 = most uncertain).

    Computed over the ``K`` top candidates: the anchors ranked by ``s = objectness × max_c p_c``
    after class-agnostic NMS, with no score threshold (so an empty scene still has ``K``
    candidates, all with small ``s``). With ``p`` a candidate's ``C`` class probabilities
    (independent sigmoids) and ``q = p / Σp`` their normalisation, and weights ``w = s / Σs``:

    Attributes:
        entropy: ``Σ w · H(q) / log C``, the score-weighted normalised class entropy. This is the
            headline ``uncertainty``: near 0 when the confident candidates each name one class,
            near 1 when they spread their belief over many classes.
        margin: ``Σ w · (1 − (p₍₁₎ − p₍₂₎))``, one minus the gap between the two best classes.
        least_confidence: ``1 − max s``, one minus the best detection score in the frame.
    """

    entropy: float
    margin: float
    least_confidence: float


def uncertainty(
    boxes_xyxy: np.ndarray, objectness: np.ndarray, class_probs: np.ndarray, top_k: int, iou_threshold: float
) -> Uncertainty:
    """:class:`Uncertainty` of one frame from ``(A, 4)`` boxes, ``(A,)`` objectness, ``(A, C)`` classes."""
    best = objectness * class_probs.max(axis=1)
    # NMS only among the strongest anchors: the rest cannot reach the top K and cost O(A²).
    pre = np.argsort(-best, kind="stable")[: max(top_k * 20, 100)]
    top = pre[nms(boxes_xyxy[pre], best[pre], iou_threshold, top_k)]
    p = class_probs[top].astype(np.float64)
    s = best[top].astype(np.float64)
    weights = s / s.sum() if s.sum() > 0 else np.full(s.shape, 1.0 / s.size)
    q = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    entropy = -(q * np.log(np.clip(q, 1e-12, None))).sum(axis=1) / np.log(p.shape[1])
    ordered = np.sort(p, axis=1)
    margin = 1.0 - (ordered[:, -1] - ordered[:, -2])
    return Uncertainty(
        entropy=float(np.clip(weights @ entropy, 0.0, 1.0)),
        margin=float(np.clip(weights @ margin, 0.0, 1.0)),
        least_confidence=float(np.clip(1.0 - s.max(), 0.0, 1.0)),
    )
