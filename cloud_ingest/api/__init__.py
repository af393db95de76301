"""The read API (``GET /segments``, ``/healthz``, ``/metrics``) and the segment query parsing it
shares with the CLI.
"""

from cloud_ingest.api.query import (
    MAX_LIMIT,
    build_query,
    decode_cursor,
    encode_cursor,
    parse_time_ns,
)
from cloud_ingest.api.read import (
    get_segment,
    healthz,
    list_segments,
    metrics,
    segment_json,
)

__all__ = [
    "MAX_LIMIT",
    "build_query",
    "decode_cursor",
    "encode_cursor",
    "get_segment",
    "healthz",
    "list_segments",
    "metrics",
    "parse_time_ns",
    "segment_json",
]
