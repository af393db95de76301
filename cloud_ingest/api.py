"""Read API and health: ``GET /segments``, ``GET /segments/{id}``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from cloud_ingest.db import SegmentRow
from cloud_ingest.errors import ProtocolError, UploadNotFound
from cloud_ingest.metrics import CONTENT_TYPE_LATEST
from cloud_ingest.services import SERVICES
from shared.segment import Segment

routes = web.RouteTableDef()
MAX_LIMIT = 1000


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def segment_json(row: SegmentRow, full: bool) -> dict[str, Any]:
    """A segment as JSON: the summary columns, plus the whole decoded record when ``full``."""
    out: dict[str, Any] = {"segment_id": row.segment_id, "vehicle_id": row.vehicle_id,
                           "start_ns": row.start_ns, "end_ns": row.end_ns, "snapshot_id": row.snapshot_id,
                           "snapshot_sha256": row.snapshot_sha256, "raw_key": row.raw_key,
                           "created_ns": row.created_ns}
    if full:
        out["segment"] = _jsonable(Segment.decode(row.record).to_body())
    return out


def _query_int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ProtocolError(f"query parameter {name} must be an integer, got {raw!r}",
                            reason="bad_query") from exc


@routes.get("/segments")
async def list_segments(request: web.Request) -> web.Response:
    """Newest first. ``vehicle``: only that vehicle; ``limit`` (1-1000, default 100);
    ``after``: only segments starting after this time (ns)."""
    svc = request.app[SERVICES]
    limit = _query_int(request, "limit", 100) or 100
    if not 1 <= limit <= MAX_LIMIT:
        raise ProtocolError(f"limit must be 1-{MAX_LIMIT}", reason="bad_query")
    rows = await svc.call(svc.db.list_segments, request.query.get("vehicle") or None, limit,
                          _query_int(request, "after", None))
    return web.json_response([segment_json(r, full=False) for r in rows])


@routes.get("/segments/{segment_id}")
async def get_segment(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    row = await svc.call(svc.db.get_segment, request.match_info["segment_id"])
    if row is None:
        raise UploadNotFound(f"no segment with id {request.match_info['segment_id']}")
    return web.json_response(segment_json(row, full=True))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    await svc.call(svc.db.list_segments, None, 1, None)  # proves the DB answers
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICES].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
