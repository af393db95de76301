"""The tus 1.0.0 endpoint: header parsing, upload files in progress, upload leases, per-vehicle
rate limits; :mod:`cloud_ingest.tus.handlers` (the aiohttp routes) and
:mod:`cloud_ingest.tus.completion` (finishing an upload once its last byte is durable) sit above
:class:`cloud_ingest.services.Services` and are imported by path.
"""

from cloud_ingest.tus.headers import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    MAX_METADATA_PAIRS,
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    Checksum,
    check_resumable,
    check_upload_id,
    declared_sha256,
    http_date,
    parse_checksum,
    parse_int,
    parse_metadata,
)
from cloud_ingest.tus.owner import (
    MAX_SLOTS,
    OwnerSlot,
    claim_owner,
)
from cloud_ingest.tus.ratelimit import RateLimiter
from cloud_ingest.tus.upload_store import (
    Progress,
    UploadFiles,
    WriteResult,
    disk_error,
)

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "EXTENSIONS",
    "MAX_METADATA_PAIRS",
    "MAX_SLOTS",
    "OFFSET_CONTENT_TYPE",
    "TUS_VERSION",
    "Checksum",
    "OwnerSlot",
    "Progress",
    "RateLimiter",
    "UploadFiles",
    "WriteResult",
    "check_resumable",
    "check_upload_id",
    "claim_owner",
    "declared_sha256",
    "disk_error",
    "http_date",
    "parse_checksum",
    "parse_int",
    "parse_metadata",
]
