"""Errors of the cloud ingest daemon: one root, a few precise subclasses.

Each carries a short machine-readable ``reason`` (a metrics label and the quarantine reason)
and, where it ends an HTTP request, the ``status`` the client receives.
"""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error raised by :mod:`cloud_ingest`."""

    reason: str = "ingest_error"
    status: int = 500

    def __init__(self, detail: str, *, reason: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason
        if status is not None:
            self.status = status


class ProtocolError(IngestError):
    """A request breaks the tus protocol (bad header, wrong offset, wrong content type...)."""

    reason = "protocol"
    status = 400


class AuthError(IngestError):
    """Missing or invalid vehicle credentials (401), or a vehicle touching another's data (403)."""

    reason = "unauthorized"
    status = 401


class UploadNotFound(IngestError):
    """No upload (or segment) with that id, or it has expired."""

    reason = "not_found"
    status = 404


class UploadLocked(IngestError):
    """Another request (on this daemon or another one) is writing this upload right now.

    Answered 409 (not WebDAV's 423), like an offset mismatch: the client's remedy is the same,
    HEAD for the offset and resume, and clients treat other 4xx as permanent failures.
    """

    reason = "locked"
    status = 409


class ChecksumMismatch(IngestError):
    """A chunk or the whole file does not match the checksum the client declared (tus 460)."""

    reason = "checksum_mismatch"
    status = 460


class IntegrityFailure(IngestError):
    """A complete snapshot failed an integrity check; it is quarantined (422)."""

    reason = "integrity"
    status = 422


class ObjectExists(IngestError):
    """A write-once object key already holds data."""

    reason = "object_exists"


class ObjectKeyError(IngestError):
    """An object key is not a plain relative path of safe names."""

    reason = "bad_object_key"


class VehicleExists(IngestError):
    """``vehicles add`` for a vehicle id that is already registered."""

    reason = "vehicle_exists"
    status = 409


class OperatorExists(IngestError):
    """``operators add`` for a name that is already taken."""

    reason = "operator_exists"
    status = 409


class RelayError(IngestError):
    """The outbox relay cannot reach NATS or the stream refuses its configuration."""

    reason = "relay_error"


class RateLimited(IngestError):
    """The vehicle sent more requests than its token bucket allows (429)."""

    reason = "rate_limited"
    status = 429

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class CalibrationError(IngestError):
    """Root of the calibration registry, importer and geometry errors."""

    reason = "calibration_error"


class CalibrationFormatError(CalibrationError):
    """A calibration file is missing, unreadable or not in the format it claims to be."""

    reason = "calibration_format"
    status = 422


class InvalidCalibration(CalibrationError):
    """A calibration bundle is self-inconsistent (bad range, non-unit quaternion, bad size)."""

    reason = "calibration_invalid"
    status = 422


class CalibrationConflict(CalibrationError):
    """A bundle overlaps a stored version of the same vehicle, or reuses its version name."""

    reason = "calibration_conflict"
    status = 409


class CalibrationNotFound(CalibrationError, LookupError):
    """No calibration version (or no such sensor in it) covers the requested vehicle and time."""

    reason = "calibration_not_found"
    status = 404


class GeometryError(CalibrationError, ValueError):
    """Arrays of the wrong shape, a degenerate rotation, or a time outside the ego-pose track."""

    reason = "geometry_error"
    status = 422


class StorageFull(IngestError):
    """The disk refused bytes (ENOSPC, EDQUOT or EFBIG): 507, nothing past the last reported offset
    was kept, and the client resumes from HEAD's offset once space is back."""

    reason = "insufficient_storage"
    status = 507


class UnknownBackend(IngestError, ValueError):
    """A configuration names a back-end (metadata DB, object store, queue) that no registry holds."""

    reason = "unknown_backend"
    status = 500
