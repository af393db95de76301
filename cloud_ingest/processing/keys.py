"""Object keys of the append-only processed outputs: ``processed/{date}/{segment_id}/{name}``.

``{date}`` is the UTC date of the segment start. Pure names only, so the segment builder (no I/O)
can point a Segment at an output before the output pass has written it.
"""

from __future__ import annotations

import time

#: The calibrated LiDAR and radar streams of one segment (an MCAP file in the snapshot format).
CALIBRATED_OBJECT = "calibrated.mcap"
#: What the calibrated pass did: frames, offsets, clamped points, bad messages (JSON).
REPORT_OBJECT = "calibrated.json"


def utc_date(t_ns: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a nanosecond timestamp: the date folder of raw/ and processed/."""
    return time.strftime("%Y-%m-%d", time.gmtime(t_ns // 1_000_000_000))


def folder(segment_id: str, start_ns: int) -> str:
    """The processed folder of a segment."""
    return f"processed/{utc_date(start_ns)}/{segment_id}"


def calibrated_key(segment_id: str, start_ns: int) -> str:
    """The key of a segment's calibrated streams (see :data:`CALIBRATED_OBJECT`)."""
    return f"{folder(segment_id, start_ns)}/{CALIBRATED_OBJECT}"


def report_key(segment_id: str, start_ns: int) -> str:
    """The key of a segment's calibration report (see :data:`REPORT_OBJECT`)."""
    return f"{folder(segment_id, start_ns)}/{REPORT_OBJECT}"
