"""Errors of the enrichment components: one root, a few precise subclasses.

Each carries a short machine-readable ``reason``, the label the enrichment service counts bad
input under (a bad sweep or map query is counted and skipped; it never stops the service).
"""

from __future__ import annotations


class EnrichError(Exception):
    """Root of every error raised by :mod:`downstream.enrich`."""

    reason: str = "enrich_error"


class EnrichInputError(EnrichError, ValueError):
    """An array or record handed to a component has the wrong shape, dtype, range or order."""

    reason = "bad_input"


class TagFormatError(EnrichError, ValueError):
    """A tag name, value or encoded ``name:value`` string breaks the tag grammar."""

    reason = "bad_tag"


class MapFormatError(EnrichError):
    """A map file is unreadable or not the format its reader expects; the message names the element."""

    reason = "bad_map"


class MapQueryError(EnrichError, ValueError):
    """A map query cannot be answered as asked (empty or non-finite trajectory, wrong frame)."""

    reason = "bad_map_query"


class NotGeoreferenced(MapQueryError):
    """A WGS-84 query went to a map that only knows its own local frame; query it in that frame."""

    reason = "map_not_georeferenced"


class UnknownMapFormat(EnrichError, KeyError):
    """No map reader is registered under the asked name."""

    reason = "unknown_map_format"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SegmentInputError(EnrichError):
    """A segment cannot be enriched from what the stores hold: recorded as a failure and skipped.

    The ``reason`` names what was wrong; the message says which object and what to do."""

    reason = "bad_segment"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason


class SegmentNotFound(SegmentInputError):
    """The announced segment has no record in the metadata DB (and none travelled inline)."""

    reason = "segment_missing"


class SnapshotUnreadable(SegmentInputError):
    """A raw snapshot or processed object of the segment is missing, truncated or corrupt."""

    reason = "snapshot_unreadable"


class ProcessedMissing(SegmentInputError):
    """The segment's motion-compensated sweeps (``calibrated.mcap``) did not appear in ``processed/``."""

    reason = "processed_missing"


class BackendUnavailable(EnrichError):
    """The metadata DB or the object store failed to answer: retried, never recorded against a segment."""

    reason = "backend_unavailable"


class VersionConflict(EnrichError):
    """An enricher version is already recorded with other settings; outputs of one version never mix."""

    reason = "version_conflict"
