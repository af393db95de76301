"""Read API and health: ``GET /segments``, ``GET /segments/{id}``, ``/healthz``, ``/metrics``.

The segment endpoints need an operator token (``Authorization: Bearer op.<name>.<secret>``, from
``avdata-cloud operators add NAME``): vehicle tokens only write. Health and metrics stay open for
the load balancer and the scraper."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.api.query import build_query, encode_cursor
from cloud_ingest.errors import UploadNotFound
from cloud_ingest.metrics import CONTENT_TYPE_LATEST
from cloud_ingest.services import SERVICES
from cloud_ingest.storage.metadata.protocol import SegmentRow
from shared.segment import Segment

routes = web.RouteTableDef()


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
                           "created_ns": row.created_ns, "superseded_by": row.superseded_by or None}
    if full:
        out["segment"] = _jsonable(Segment.decode(row.record).to_body())
    return out


async def _operator(request: web.Request) -> str:
    svc = request.app[SERVICES]
    return await svc.call(auth.authenticate_operator, svc.db, request.headers.get("Authorization"))


@routes.get("/segments")
async def list_segments(request: web.Request) -> web.Response:
    """Newest first, one page: ``{"segments": [...], "next_cursor": str | null}``.

    Query: ``vehicle``, ``since``/``until`` (ISO 8601 or ns; overlap with the window), ``trigger``
    (kind), ``tag``, ``limit`` (1-1000, default 100), ``cursor`` (from the previous page),
    ``superseded=1`` to include segments replaced by joined ones. Needs an operator token."""
    svc = request.app[SERVICES]
    await _operator(request)
    qs = request.query
    q = build_query(vehicle=qs.get("vehicle"), since=qs.get("since"), until=qs.get("until"),
                    trigger=qs.get("trigger"), tag=qs.get("tag"), limit=qs.get("limit"), cursor=qs.get("cursor"),
                    include_superseded=qs.get("superseded") in ("1", "true"))
    rows, cursor = await svc.call(svc.db.query_segments, q)
    return web.json_response({"segments": [segment_json(r, full=False) for r in rows],
                              "next_cursor": encode_cursor(cursor)})


@routes.get("/segments/{segment_id}")
async def get_segment(request: web.Request) -> web.Response:
    """One segment in full (the decoded record). Needs an operator token."""
    svc = request.app[SERVICES]
    await _operator(request)
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
