"""Errors raised by the vehicle service: one root, a few precise subclasses.

Foreign exceptions (sqlite3, aiohttp, OSError) are translated at the boundary into one of these,
so callers count and report them by kind without knowing which library failed.
"""

from __future__ import annotations


class VehicleError(Exception):
    """Root of every error raised by the ``vehicle`` package."""

    #: Short machine-readable label, used as a metrics label and as a queue failure reason.
    reason: str = "vehicle_error"


class QueueError(VehicleError):
    """The persistent upload queue cannot be opened or updated."""

    reason = "queue_error"


class SnapshotWriteError(VehicleError):
    """A snapshot could not be written durably (disk full, I/O error)."""

    reason = "snapshot_write_failed"


class UploadError(VehicleError):
    """An upload did not complete."""

    reason = "upload_error"


class RetryableUploadError(UploadError):
    """A network error or a 5xx: try again later, resuming from the server's offset."""

    reason = "retryable"


class ChecksumMismatch(UploadError):
    """The server answered 460: the stored bytes do not hash to the announced sha256."""

    reason = "checksum_mismatch"


class PermanentUploadError(UploadError):
    """The server refused the snapshot for good (401/403/413/422): do not retry it."""

    reason = "permanent"

    def __init__(self, message: str, status: int, server_reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_reason = server_reason
