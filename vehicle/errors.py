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


class OodReferenceError(InferenceError):
    """An out-of-distribution reference file cannot be used; refit it with ``avdata-vehicle ood fit``."""

    reason = "ood_reference"


class OodReferenceUnreadable(OodReferenceError):
    """The reference file is missing, unreadable, not an ``avdata.OodReference`` or malformed inside."""

    reason = "ood_reference_unreadable"


class OodReferenceVersionError(OodReferenceError):
    """The reference file is of an ``avdata.OodReference`` version this build cannot read."""

    reason = "ood_reference_version"


class OodReferenceMismatch(OodReferenceError):
    """The reference was fitted with another model or embedding (file, input size, tensors, seed, dimension)."""

    reason = "ood_reference_mismatch"


class OodFitError(InferenceError):
    """A reference cannot be fitted: no usable frames, too few of them, or a bad setting."""

    reason = "ood_fit"


class FrameSourceError(OodFitError):
    """A frame source for a fit (an image directory, a snapshot) is missing or unreadable."""

    reason = "frame_source"
