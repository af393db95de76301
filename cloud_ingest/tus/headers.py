"""Parsing and formatting of tus 1.0.0 headers (pure functions, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from email.utils import formatdate

from cloud_ingest.errors import ProtocolError

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_UINT = re.compile(r"^[0-9]{1,19}$")  # ASCII digits only ("²".isdigit() is True), at most 19 of them
MAX_METADATA_PAIRS = 32


def check_resumable(value: str | None) -> None:
    """Every request but OPTIONS must say ``Tus-Resumable: 1.0.0`` (else 412)."""
    if value != TUS_VERSION:
        raise ProtocolError(f"Tus-Resumable must be {TUS_VERSION}, got {value!r}",
                            reason="tus_version", status=412)


def parse_int(name: str, value: str | None) -> int:
    """A non-negative integer header (``Upload-Length``, ``Upload-Offset``) of at most 19 ASCII digits."""
    if value is None or not _UINT.fullmatch(value):
        shown = value if value is None or len(value) <= 40 else value[:40] + "..."
        raise ProtocolError(f"{name} must be a non-negative integer of at most 19 digits, got {shown!r}",
                            reason="bad_header")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional); may be empty."""
    out: dict[str, str] = {}
    if not value or not value.strip():
        return out
    items = value.split(",")
    if len(items) > MAX_METADATA_PAIRS:
        raise ProtocolError(f"Upload-Metadata has {len(items)} pairs; at most {MAX_METADATA_PAIRS}",
                            reason="bad_metadata")
    for item in items:
        parts = item.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise ProtocolError(f"Upload-Metadata item {item[:60]!r} is not 'key base64value'",
                                reason="bad_metadata")
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except ValueError as exc:  # binascii.Error, UnicodeDecodeError, and non-ASCII text
            raise ProtocolError(f"Upload-Metadata value of {parts[0]!r} is not base64 UTF-8",
                                reason="bad_metadata") from exc
        out[parts[0]] = decoded
    return out


def declared_sha256(meta: dict[str, str]) -> str:
    """The whole file's hash the vehicle declares (metadata ``sha256``, 64 hex digits)."""
    value = meta.get("sha256", "")
    if not _HEX64.fullmatch(value):
        raise ProtocolError("Upload-Metadata must carry 'sha256' with the file's 64-hex-digit hash",
                            reason="bad_metadata")
    return value.lower()


@dataclass(frozen=True, slots=True)
class Checksum:
    """A parsed ``Upload-Checksum`` header: algorithm and expected digest of the PATCH body."""

    algorithm: str
    digest: bytes

    def new(self) -> hashlib._Hash:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for an unsupported algorithm."""
    if value is None:
        return None
    algorithm, _, b64 = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ProtocolError(f"Upload-Checksum algorithm {algorithm!r} is not supported "
                            f"(supported: {', '.join(CHECKSUM_ALGORITHMS)})", reason="bad_checksum_header")
    try:
        digest = base64.b64decode(b64, validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII text
        raise ProtocolError("Upload-Checksum digest is not base64", reason="bad_checksum_header") from exc
    return Checksum(algorithm, digest)


def check_upload_id(upload_id: str) -> str:
    """Upload ids are the server's own 32-hex-digit ids; anything else cannot exist."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ProtocolError(f"not an upload id: {upload_id[:80]!r}", reason="bad_upload_id", status=404)
    return upload_id


def http_date(t_ns: int) -> str:
    """RFC 7231 date for ``Upload-Expires``."""
    return formatdate(t_ns / 1e9, usegmt=True)
