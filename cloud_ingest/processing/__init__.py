"""Processed outputs derived from raw data: calibration applied to LiDAR and radar.

:mod:`.keys` names the objects, :mod:`.calibrate` holds the pure maths (which streams get
calibrated, compensation, Doppler correction), :mod:`.ego_motion` the ego track (6-DoF from a pose
stream, else planar from the vehicle states), :mod:`.outputs` reads the raw snapshot and writes the
calibrated objects.
"""

from cloud_ingest.processing.calibrate import (
    calibrated_refs,
    compensate_sweep,
    correct_returns,
    offset_ns,
    pose_refs,
    with_calibrated_refs,
)
from cloud_ingest.processing.complete import (
    complete_segments,
    folder,
    index_doc,
    mark_superseded,
    utc_date,
    write_segment,
)
from cloud_ingest.processing.ego_motion import (
    DIFF_NS,
    EXTRAPOLATE_NS,
    MODEL_6DOF,
    MODEL_PLANAR,
    EgoTrack,
    quat_multiply,
    quat_to_rotvec,
    twist_motion,
)
from cloud_ingest.processing.keys import (
    CALIBRATED_OBJECT,
    REPORT_OBJECT,
    calibrated_key,
    report_key,
)
from cloud_ingest.processing.outputs import (
    BUILDER,
    needs_calibrated,
    write_calibrated,
)

__all__ = [
    "BUILDER",
    "CALIBRATED_OBJECT",
    "DIFF_NS",
    "EXTRAPOLATE_NS",
    "MODEL_6DOF",
    "MODEL_PLANAR",
    "REPORT_OBJECT",
    "EgoTrack",
    "calibrated_key",
    "calibrated_refs",
    "compensate_sweep",
    "complete_segments",
    "correct_returns",
    "folder",
    "index_doc",
    "mark_superseded",
    "needs_calibrated",
    "offset_ns",
    "pose_refs",
    "quat_multiply",
    "quat_to_rotvec",
    "report_key",
    "twist_motion",
    "utc_date",
    "with_calibrated_refs",
    "write_calibrated",
    "write_segment",
]
