"""Integrity of an upload before anything is stored: a push parser for MCAP and the checks run
while chunks arrive and on the whole file.
"""

from cloud_ingest.integrity.checks import (
    EMPTY_TRACK,
    GNSS_ENCODING,
    VIDEO_ENCODINGS,
    ChannelScan,
    GnssTrack,
    SnapshotScan,
    SnapshotScanner,
    check_scan,
    check_sha256,
    scan_snapshot,
)
from cloud_ingest.integrity.mcap_stream import (
    MAGIC,
    MAX_RECORD_BYTES,
    McapFormatError,
    McapHandler,
    McapStream,
)

__all__ = [
    "EMPTY_TRACK",
    "GNSS_ENCODING",
    "MAGIC",
    "MAX_RECORD_BYTES",
    "VIDEO_ENCODINGS",
    "ChannelScan",
    "GnssTrack",
    "McapFormatError",
    "McapHandler",
    "McapStream",
    "SnapshotScan",
    "SnapshotScanner",
    "check_scan",
    "check_sha256",
    "scan_snapshot",
]
