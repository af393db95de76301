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
    with_calibrated_refs,
)
from cloud_ingest.processing.keys import (
    CALIBRATED_OBJECT,
    REPORT_OBJECT,
    calibrated_key,
    folder,
    report_key,
    utc_date,
)
from cloud_ingest.processing.outputs import needs_calibrated, write_calibrated

__all__ = ["CALIBRATED_OBJECT", "EXTRAPOLATE_NS", "REPORT_OBJECT", "EgoTrack", "calibrated_key",
           "calibrated_refs", "compensate_sweep", "correct_returns", "folder", "needs_calibrated",
           "report_key", "utc_date", "with_calibrated_refs", "write_calibrated"]
