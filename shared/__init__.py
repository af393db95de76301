"""Contracts and codecs spoken by both the vehicle and the cloud. Imports no deployable."""

from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics
from shared.errors import (
    ContractError,
    MalformedMessage,
    OversizedMessage,
    SnapshotError,
    TruncatedMessage,
    UnknownVersion,
)
from shared.manifest import ChannelSummary, SnapshotManifest
from shared.messages import SensorMessage
from shared.model_scores import Detection, ModelScores, decode_scores
from shared.segment import Provenance, Segment, Source, StreamRef
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource

__all__ = [
    "CalibrationBundle", "CameraIntrinsics", "ChannelSummary", "ContractError", "Detection",
    "MalformedMessage", "ModelScores", "OversizedMessage", "Provenance", "Segment", "SensorExtrinsics",
    "SensorMessage", "SnapshotError", "SnapshotManifest", "Source", "StreamRef",
    "TriggerEvent", "TriggerKind", "TriggerSource", "TruncatedMessage", "UnknownVersion", "decode_scores",
]
