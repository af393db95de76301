"""Canonical Segments: cut out of a checked snapshot, and short adjacent ones joined (pure: no I/O).
"""

from cloud_ingest.segments.builder import (
    BUILDER,
    MAX_SEGMENT_NS,
    MIN_SEGMENT_NS,
    SEGMENT_NAMESPACE,
    SnapshotInfo,
    build_segments,
    gnss_context,
    piece_edges,
    segment_id,
)
from cloud_ingest.segments.join import (
    JOIN_NAMESPACE,
    join_segments,
    joined_id,
    leaf_ids,
    merge_context,
    plan_join,
)

__all__ = [
    "BUILDER",
    "JOIN_NAMESPACE",
    "MAX_SEGMENT_NS",
    "MIN_SEGMENT_NS",
    "SEGMENT_NAMESPACE",
    "SnapshotInfo",
    "build_segments",
    "gnss_context",
    "join_segments",
    "joined_id",
    "leaf_ids",
    "merge_context",
    "piece_edges",
    "plan_join",
    "segment_id",
]
