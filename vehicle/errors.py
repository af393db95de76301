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


class DiskFullError(SnapshotWriteError):
    """The snapshot did not fit: the filesystem is full (ENOSPC, EDQUOT) or the file too large (EFBIG).

    ``needed_bytes`` estimates the room the snapshot needs; the partial file is already deleted.
    """

    reason = "disk_full"

    def __init__(self, message: str, needed_bytes: int) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes


class MetricsPortError(VehicleError):
    """The ``/metrics`` endpoint cannot be served: its port is taken or the address is not local."""

    reason = "metrics_port"


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


class InferenceError(VehicleError):
    """The on-vehicle model could not score a frame."""

    reason = "inference_error"


class ModelLoadError(InferenceError):
    """The ONNX model is missing, unreadable, lacks a named tensor, or the provider asked for is absent."""

    reason = "model_load_failed"


class InvalidFrame(InferenceError):
    """A frame handed to the detector is not an (H, W, 3) uint8 BGR image."""

    reason = "invalid_frame"


class FrameDecodeError(InferenceError):
    """A camera access unit could not be decoded; the stream waits for its next keyframe."""

    reason = "decode_failed"


class UnsupportedEncoding(FrameDecodeError):
    """A camera message names an encoding the frame decoder has no codec for."""

    reason = "unsupported_encoding"
