"""Parsing of segment queries shared by the read API and the CLI (pure).

Times are ISO 8601 (``2023-11-14T22:13:20Z``; a time without zone is UTC) or integer nanoseconds.
A page cursor is the URL-safe base64 of ``<start_ns>:<segment_id>`` of the last row of the page.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from cloud_ingest.errors import ProtocolError
from cloud_ingest.storage.metadata.protocol import SegmentQuery

MAX_LIMIT = 1000


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(detail, reason="bad_query")


def parse_time_ns(name: str, text: str | None) -> int | None:
    """``None`` for empty; else nanoseconds since the epoch from ISO 8601 or an integer."""
    if text is None or text == "":
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad(f"{name} must be ISO 8601 (e.g. 2023-11-14T22:13:20Z) or integer ns, got {text!r}") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def encode_cursor(cursor: tuple[int, str] | None) -> str | None:
    """The opaque text form of a page cursor."""
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[int, str] | None:
    """Inverse of :func:`encode_cursor`; :class:`ProtocolError` for anything else."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        start, _, sid = raw.partition(":")
        if not sid:
            raise ValueError("no segment id")
        return int(start), sid
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad(f"cursor {text[:40]!r} is not one this service issued") from exc


def build_query(*, vehicle: str | None, since: str | None, until: str | None, trigger: str | None,
                tag: str | None, limit: str | int | None, cursor: str | None,
                include_superseded: bool = False) -> SegmentQuery:
    """A validated :class:`SegmentQuery` from text parameters."""
    try:
        n = 100 if limit is None or limit == "" else int(limit)
    except ValueError as exc:
        raise _bad(f"limit must be an integer, got {limit!r}") from exc
    if not 1 <= n <= MAX_LIMIT:
        raise _bad(f"limit must be 1-{MAX_LIMIT}, got {n}")
    since_ns, until_ns = parse_time_ns("since", since), parse_time_ns("until", until)
    if since_ns is not None and until_ns is not None and until_ns <= since_ns:
        raise _bad("until must be after since")
    return SegmentQuery(vehicle_id=vehicle or None, since_ns=since_ns, until_ns=until_ns, trigger=trigger or None,
                        tag=tag or None, include_superseded=include_superseded, limit=n,
                        cursor=decode_cursor(cursor))
