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
