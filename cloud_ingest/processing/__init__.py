"""Processed outputs derived from raw data: calibration applied to LiDAR and radar.

:mod:`.keys` names the objects, :mod:`.calibrate` holds the pure maths (which streams get
calibrated, ego motion from vehicle states, compensation, Doppler correction), :mod:`.outputs`
reads the raw snapshot and writes the calibrated objects.
"""

from cloud_ingest.processing.calibrate import (
    EXTRAPOLATE_NS,
    EgoTrack,
    calibrated_refs,
    compensate_sweep,
    correct_returns,
    offset_ns,
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
    "EXTRAPOLATE_NS",
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
    "report_key",
    "utc_date",
    "with_calibrated_refs",
    "write_calibrated",
    "write_segment",
]
