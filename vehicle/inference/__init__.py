"""The inference process: camera access units decoded, YOLOX-nano over ONNX Runtime, scene
embeddings, OOD scores against a reference fitted offline and a drift monitor, published as
``model/scores``; and the offline fit of that reference (``avdata-vehicle ood fit``).
"""

from vehicle.inference.cli import (
    Sources,
    fit,
    fit_summary,
    score,
)
from vehicle.inference.decode import (
    CODECS,
    DecodedFrame,
    FrameDecoder,
)
from vehicle.inference.drift import DriftMonitor
from vehicle.inference.embedding import (
    EMBEDDING_DIM,
    EMBEDDING_RECIPE,
    EmbeddingSpec,
    FeatureProjector,
)
from vehicle.inference.fitting import (
    MIN_FRAMES,
    THRESHOLD_METHOD,
    FitResult,
    check_settings,
    fit_reference,
    fold_blocks,
    out_of_fold_distances,
    scaled_chi2_quantile,
)
from vehicle.inference.frames import (
    AUGMENTATIONS,
    CROP_FRACTION,
    IMAGE_SUFFIXES,
    DecodeCounts,
    SourceFrame,
    camera_topics,
    image_paths,
    read_image,
    snapshot_frames,
    views,
)
from vehicle.inference.gaussian import (
    SHRINKAGE,
    ShrunkGaussian,
    ledoit_wolf_shrinkage,
    oas_shrinkage,
)
from vehicle.inference.loop import (
    FrameScheduler,
    InferenceMetrics,
    load_checked_reference,
    run_inference_process,
)
from vehicle.inference.model import (
    MODELS_DIR,
    PROVIDERS,
    Detector,
    DetectorConfig,
    FrameResult,
    choose_providers,
    coco_class_names,
    with_extra_outputs,
)
from vehicle.inference.process import InferenceProcessConfig, serve
from vehicle.inference.reference import (
    FitRecord,
    OodReference,
    Threshold,
    decode_reference,
    load_reference,
    reference_id,
    save_reference,
)

__all__ = [
    "AUGMENTATIONS",
    "CODECS",
    "CROP_FRACTION",
    "EMBEDDING_DIM",
    "EMBEDDING_RECIPE",
    "IMAGE_SUFFIXES",
    "MIN_FRAMES",
    "MODELS_DIR",
    "PROVIDERS",
    "SHRINKAGE",
    "THRESHOLD_METHOD",
    "DecodeCounts",
    "DecodedFrame",
    "Detector",
    "DetectorConfig",
    "DriftMonitor",
    "EmbeddingSpec",
    "FeatureProjector",
    "FitRecord",
    "FitResult",
    "FrameDecoder",
    "FrameResult",
    "FrameScheduler",
    "InferenceMetrics",
    "InferenceProcessConfig",
    "OodReference",
    "ShrunkGaussian",
    "SourceFrame",
    "Sources",
    "Threshold",
    "camera_topics",
    "check_settings",
    "choose_providers",
    "coco_class_names",
    "decode_reference",
    "fit",
    "fit_reference",
    "fit_summary",
    "fold_blocks",
    "image_paths",
    "ledoit_wolf_shrinkage",
    "load_checked_reference",
    "load_reference",
    "oas_shrinkage",
    "out_of_fold_distances",
    "read_image",
    "reference_id",
    "run_inference_process",
    "save_reference",
    "scaled_chi2_quantile",
    "score",
    "serve",
    "snapshot_frames",
    "views",
    "with_extra_outputs",
]
