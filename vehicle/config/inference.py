"""The inference process's configuration: ``[inference]`` and ``[inference.model]`` of ``vehicle.toml``.

Kept apart from the model code so that loading a configuration (every vehicle process does) never
imports ONNX Runtime, PyAV or the detector; only the ``infer`` process needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import shared
from shared.yolox import STRIDES

#: The bundled model and its class names.
MODELS_DIR = Path(shared.__file__).resolve().parent / "models"
#: ``[inference.model] provider`` names and the ONNX Runtime execution providers they select.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: ``ood fit --augment`` names and the views per frame each gives (see vehicle.inference.frames).
OOD_AUGMENTATIONS = {"none": 1, "flip": 2, "flip_crops": 10}
#: ``ood fit --shrinkage`` names (see vehicle.inference.gaussian).
OOD_SHRINKAGE = ("oas", "lw")
#: Strides (px) of the YOLOX head's feature maps, finest first; the input size is a multiple of the last.
YOLOX_STRIDES_PX = STRIDES


@dataclass(frozen=True)
class DetectorConfig:
    """Model and post-processing settings (``[inference.model]`` in TOML).

    ``model_path`` unset means the bundled ``models/yolox_nano.onnx``; ``provider`` is ``auto``,
    ``cpu`` or ``cuda``; ``intra_op_threads`` 0 lets ONNX Runtime pick. ``feature_tensors`` name
    the head-input tensors of the graph (PAFPN outputs, strides 8/16/32) used for the embedding.
    """

    model_path: Path | None = None
    provider: str = "auto"
    intra_op_threads: int = 1
    input_size_px: int = 416
    score_threshold: float = 0.3
    nms_iou: float = 0.45
    max_detections: int = 100
    uncertainty_top_k: int = 10
    feature_tensors: tuple[str, ...] = ("956", "990", "1024")
    embedding_seed: int = 0

    def __post_init__(self) -> None:
        if self.provider not in ("auto", *PROVIDERS):
            raise ValueError(f"provider must be auto, cpu or cuda, got {self.provider!r}")
        if self.intra_op_threads < 0:
            raise ValueError(f"intra_op_threads must be >= 0, got {self.intra_op_threads}")
        if self.input_size_px <= 0 or self.input_size_px % YOLOX_STRIDES_PX[-1]:
            raise ValueError(f"input_size_px must be a positive multiple of 32, got {self.input_size_px}")
        for name in ("score_threshold", "nms_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)!r}")
        if self.max_detections <= 0 or self.uncertainty_top_k <= 0:
            raise ValueError("max_detections and uncertainty_top_k must be > 0")
        if not self.feature_tensors:
            raise ValueError("feature_tensors must name at least one tensor")

    def resolved_model_path(self) -> Path:
        """The ONNX file to load."""
        return self.model_path if self.model_path is not None else MODELS_DIR / "yolox_nano.onnx"


@dataclass(frozen=True)
class InferenceProcessConfig:
    """The inference process's TOML tree; ``max_rate_hz`` 0 scores every frame it can.

    ``camera_topics`` are ZeroMQ prefix subscriptions. ``ood_reference`` names the
    out-of-distribution reference file that ``avdata-vehicle ood fit`` wrote (a relative path is
    taken from the working directory); scores carry ``ood`` and ``ood_ratio`` against it, and none
    without it. The process refuses to start when the file does not match the model.

    The drift monitor is a running window of the car's own recent embeddings (not an OOD
    reference): it takes every ``drift_every``-th scored embedding, keeps the last
    ``drift_capacity``, refits every ``drift_refit_every`` additions, and scores carry ``drift``
    once it holds ``drift_min_reference``.
    """

    sub_endpoints: tuple[str, ...] = ("tcp://127.0.0.1:5555",)
    camera_topics: tuple[str, ...] = ("camera/",)
    pub_endpoint: str = "tcp://127.0.0.1:5570"
    scores_topic: str = "model/scores"
    sensor_id: str = "yolox_nano"
    max_rate_hz: float = 10.0
    max_payload_bytes: int = 16 * 1024 * 1024
    decoder_err_detect: str = "explode"
    ood_reference: Path | None = None
    drift_min_reference: int = 30
    drift_capacity: int = 2000
    drift_every: int = 10
    drift_refit_every: int = 50
    log_level: str = "info"
    model: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        for ep in (*self.sub_endpoints, self.pub_endpoint):
            if "://" not in ep:
                raise ValueError(f"{ep!r} is not a ZeroMQ endpoint like tcp://host:port")
        if not self.sub_endpoints or not self.camera_topics:
            raise ValueError("sub_endpoints and camera_topics must not be empty")
        if self.max_rate_hz < 0:
            raise ValueError(f"max_rate_hz must be >= 0, got {self.max_rate_hz}")
        for name in ("max_payload_bytes", "drift_capacity", "drift_every", "drift_refit_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 2 <= self.drift_min_reference <= self.drift_capacity:
            raise ValueError(f"drift_min_reference must be within [2, drift_capacity], got {self.drift_min_reference}")
