"""The on-vehicle detector: YOLOX-nano over ONNX Runtime, one frame in, one :class:`FrameResult` out.

The session runs on the CUDA provider when onnxruntime-gpu is installed (it lists
``CUDAExecutionProvider``) and on the CPU provider otherwise; ONNX Runtime itself falls back to the
CPU when the CUDA provider is listed but no GPU answers, and :attr:`Detector.provider` reports the
provider the session really uses. Besides the detections the session returns the three feature maps
that feed the YOLOX head, added as extra graph outputs in memory (see :func:`with_extra_outputs`),
from which :mod:`vehicle.inference.embedding` derives the 512-d scene embedding.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from shared import yolox
from shared.model_scores import Detection
from vehicle.config.inference import MODELS_DIR, PROVIDERS, DetectorConfig
from vehicle.errors import InferenceError, InvalidFrame, ModelLoadError
from vehicle.inference.embedding import EmbeddingSpec, FeatureProjector

log = logging.getLogger(__name__)

__all__ = ["MODELS_DIR", "PROVIDERS", "Detection", "Detector", "DetectorConfig", "FrameResult",
           "choose_providers", "coco_class_names", "with_extra_outputs"]



@dataclass(frozen=True, eq=False)
class FrameResult:
    """What the model says about one frame.

    Attributes:
        detections: after class-wise NMS, best score first.
        uncertainty: see :class:`shared.yolox.Uncertainty` (entropy, margin, least_confidence).
        embedding: ``(512,)`` float32, unit L2 norm; see :mod:`vehicle.inference.embedding`.
        inference_ns: wall time of preprocessing, ``session.run`` and post-processing.
    """

    detections: tuple[Detection, ...]
    uncertainty: yolox.Uncertainty
    embedding: np.ndarray
    image_w_px: int
    image_h_px: int
    inference_ns: int


def coco_class_names() -> tuple[str, ...]:
    """The 80 class names of the bundled model, by class id."""
    lines = (MODELS_DIR / "coco_classes.txt").read_text().splitlines()
    return tuple(name.strip() for name in lines if name.strip())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def with_extra_outputs(model: bytes, names: tuple[str, ...]) -> bytes:
    """The serialized ONNX ``model`` with float tensors ``names`` added as graph outputs.

    Protobuf merges a repeated occurrence of an embedded message field into the first, so
    appending ``ModelProto.graph`` (field 7) holding only ``GraphProto.output`` entries (field 12,
    each a ``ValueInfoProto`` with ``name`` and a float ``tensor_type``) adds outputs without
    parsing or rewriting the graph, and without the ``onnx`` package.
    """
    float_tensor = _field(1, _varint(1 << 3) + _varint(1))  # TypeProto.tensor_type.elem_type = FLOAT
    outputs = b"".join(_field(12, _field(1, n.encode()) + _field(2, float_tensor)) for n in names)
    return model + _field(7, outputs)


def choose_providers(wanted: str, available: list[str]) -> list[str]:
    """Execution providers for ``wanted`` (auto/cpu/cuda) given ONNX Runtime's available ones."""
    cuda, cpu = PROVIDERS["cuda"], PROVIDERS["cpu"]
    if wanted == "cuda" and cuda not in available:
        raise ModelLoadError(f"provider 'cuda' asked for but this onnxruntime offers only {available}; "
                             "install onnxruntime-gpu or set provider = \"auto\"")
    if wanted in ("cuda", "auto") and cuda in available:
        return [cuda, cpu]
    return [cpu]


class Detector:
    """YOLOX-nano: BGR frame → detections, uncertainty and embedding (:meth:`detect`)."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        path = config.resolved_model_path()
        try:
            model = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model {path}: {exc.strerror or exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = 1
        providers = choose_providers(config.provider, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(with_extra_outputs(model, config.feature_tensors),
                                                sess_options=options, providers=providers)
        except Exception as exc:  # ONNX Runtime raises its own untyped Fail/InvalidGraph errors
            raise ModelLoadError(f"cannot load {path.name} with outputs {config.feature_tensors}: {exc}") from exc
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()
        channels = tuple(int(o.shape[1]) for o in outputs[1:])
        self.projector = FeatureProjector(channels, seed=config.embedding_seed)
        #: What decides this detector's embeddings; an OOD reference fitted with another is refused.
        self.embedding_spec = EmbeddingSpec(
            model_name=path.name, model_sha256=hashlib.sha256(model).hexdigest(),
            input_size_px=config.input_size_px, feature_tensors=tuple(config.feature_tensors),
            projection_seed=config.embedding_seed, dim=self.projector.dim)
        self.class_names = coco_class_names()
        log.info("detector ready", extra={"model": path.name, "provider": self.provider,
                                          "threads": config.intra_op_threads, "feature_channels": channels})

    def run_tensor(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Bare ``session.run`` on a preprocessed ``(1, 3, S, S)`` tensor: ``[output, *feature_maps]``."""
        return [np.asarray(o) for o in self.session.run(None, {self.input_name: tensor})]

    def detect(self, bgr: np.ndarray) -> FrameResult:
        """Run the model on one ``(H, W, 3)`` uint8 BGR frame."""
        t0 = time.perf_counter_ns()
        cfg = self.config
        try:
            tensor, box = yolox.letterbox(bgr, cfg.input_size_px)
        except ValueError as exc:
            raise InvalidFrame(str(exc)) from exc
        try:
            raw, *features = self.run_tensor(tensor)
        except Exception as exc:  # ONNX Runtime's own Fail/RuntimeException, translated here
            raise InferenceError(f"session.run failed on a {box.image_w_px}x{box.image_h_px} frame: {exc}") from exc
        decoded = yolox.decode(raw[0], cfg.input_size_px)
        boxes = yolox.cxcywh_to_xyxy(decoded[:, :4]) / box.ratio
        boxes = np.clip(boxes, 0.0, [box.image_w_px, box.image_h_px, box.image_w_px, box.image_h_px])
        objectness, class_probs = decoded[:, 4], decoded[:, 5:]
        anchors, classes, scores = yolox.classwise_nms(
            boxes, objectness[:, None] * class_probs, cfg.score_threshold, cfg.nms_iou, cfg.max_detections)
        detections = tuple(
            Detection(box_xyxy_px=tuple(float(v) for v in boxes[a]), class_id=int(c),  # type: ignore[arg-type]
                      class_name=self.class_names[c] if c < len(self.class_names) else str(c),
                      score=float(s))
            for a, c, s in zip(anchors, classes, scores, strict=True))
        unc = yolox.uncertainty(boxes, objectness, class_probs, cfg.uncertainty_top_k, cfg.nms_iou)
        return FrameResult(detections=detections, uncertainty=unc, embedding=self.projector(features),
                           image_w_px=box.image_w_px, image_h_px=box.image_h_px,
                           inference_ns=time.perf_counter_ns() - t0)
