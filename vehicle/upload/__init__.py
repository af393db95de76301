"""Uploads: the persistent, prioritised upload queue and the resumable tus client.
"""

from vehicle.upload.queue import (
    EVICTED,
    EVICTED_DISK_FULL,
    STATES,
    QueueEntry,
    UploadQueue,
)
from vehicle.upload.uploader import (
    MAX_CHECKSUM_RESTARTS,
    PERMANENT_STATUSES,
    TokenBucket,
    TusUploader,
    UploadResult,
    encode_metadata,
)

__all__ = [
    "EVICTED",
    "EVICTED_DISK_FULL",
    "MAX_CHECKSUM_RESTARTS",
    "PERMANENT_STATUSES",
    "STATES",
    "QueueEntry",
    "TokenBucket",
    "TusUploader",
    "UploadQueue",
    "UploadResult",
    "encode_metadata",
]
