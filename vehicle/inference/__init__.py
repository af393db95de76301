"""The inference process: camera access units decoded, YOLOX-nano over ONNX Runtime, scene
embeddings and OOD scores, published as ``model/scores``.
"""

from vehicle.inference.decode import (
    CODECS,
    DecodedFrame,
    FrameDecoder,
)
from vehicle.inference.embedding import (
    EMBEDDING_DIM,
    FeatureProjector,
    OodScorer,
    ledoit_wolf_shrinkage,
)
from vehicle.inference.loop import (
    FrameScheduler,
    InferenceMetrics,
    run_inference_process,
)
from vehicle.inference.model import (
    MODELS_DIR,
    PROVIDERS,
    Detection,
    Detector,
    DetectorConfig,
    FrameResult,
    choose_providers,
    coco_class_names,
    with_extra_outputs,
)
from vehicle.inference.process import (
    InferenceProcessConfig,
    decode_scores,
    main,
    serve,
)
from vehicle.inference.scores import (
    ENCODING,
    MAX_BYTES,
    SCHEMA,
    VERSION,
    VERSIONS,
    ModelScores,
)
from vehicle.inference.yolox import (
    PAD_VALUE,
    RESIZE,
    STRIDES,
    Letterbox,
    Uncertainty,
    anchor_grid,
    classwise_nms,
    cxcywh_to_xyxy,
    decode,
    iou_one_to_many,
    is_decoded,
    letterbox,
    nms,
    uncertainty,
)

__all__ = [
    "CODECS",
    "EMBEDDING_DIM",
    "ENCODING",
    "MAX_BYTES",
    "MODELS_DIR",
    "PAD_VALUE",
    "PROVIDERS",
    "RESIZE",
    "SCHEMA",
    "STRIDES",
    "VERSION",
    "VERSIONS",
    "DecodedFrame",
    "Detection",
    "Detector",
    "DetectorConfig",
    "FeatureProjector",
    "FrameDecoder",
    "FrameResult",
    "FrameScheduler",
    "InferenceMetrics",
    "InferenceProcessConfig",
    "Letterbox",
    "ModelScores",
    "OodScorer",
    "Uncertainty",
    "anchor_grid",
    "choose_providers",
    "classwise_nms",
    "coco_class_names",
    "cxcywh_to_xyxy",
    "decode",
    "decode_scores",
    "iou_one_to_many",
    "is_decoded",
    "ledoit_wolf_shrinkage",
    "letterbox",
    "main",
    "nms",
    "run_inference_process",
    "serve",
    "uncertainty",
    "with_extra_outputs",
]
