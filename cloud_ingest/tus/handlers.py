"""tus 1.0.0 handlers: core, creation, creation-with-upload, termination, checksum, expiration.

Routes (mounted at ``/files/``): ``OPTIONS /files/`` discovery, ``POST /files/`` create,
``HEAD``/``PATCH``/``DELETE /files/{id}``, ``GET /files/{id}/status``. The final PATCH runs the
ingest pipeline before it answers, so its 204 is the durability acknowledgement; it carries
``X-Avdata-Segments``. A client whose final answer was lost learns the outcome from HEAD: 200
with ``X-Avdata-Status: complete`` and the segments, or 422 for a quarantined snapshot. A PATCH
to a complete upload (tuspy re-sending after a duplicate answer) gets 204 at the full length.

An upload that holds all its bytes but was never ingested (the daemon died in between) is never
reported as merely "offset == length", which a client would take for delivered: HEAD (or PATCH)
completes it first, or answers 409 with ``Retry-After`` while another request is completing it.
A disk that refuses bytes gets 507 with a JSON reason; the acknowledged bytes are kept.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.errors import IntegrityFailure, ProtocolError, UploadNotFound
from cloud_ingest.services import SERVICES, Services
from cloud_ingest.storage.metadata.protocol import COMPLETE, IN_PROGRESS, QUARANTINED, UploadRecord
from cloud_ingest.tus.completion import complete_upload, finish_stalled
from cloud_ingest.tus.headers import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    check_resumable,
    check_upload_id,
    declared_sha256,
    http_date,
    parse_checksum,
    parse_int,
    parse_metadata,
)

routes = web.RouteTableDef()
BASE = "/files/"


def _headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def _done_headers(rec: UploadRecord) -> dict[str, str]:
    return _headers(**{"Upload-Offset": str(rec.length_bytes), "X-Avdata-Segments": ",".join(rec.segment_ids)})


async def _owned(svc: Services, request: web.Request) -> tuple[auth.Principal, UploadRecord]:
    """The upload named in the URL, checked to belong to the authenticated vehicle."""
    check_resumable(request.headers.get("Tus-Resumable"))
    upload_id = check_upload_id(request.match_info["upload_id"])
    principal, rec = await svc.authenticate_and_get(request, upload_id)
    if rec is None:
        raise UploadNotFound(f"no upload with id {upload_id}")
    auth.require_owner(principal, rec.vehicle_id, f"upload {upload_id}")
    if rec.status == IN_PROGRESS and rec.expires_ns < time.time_ns():
        raise UploadNotFound(f"upload {upload_id} has expired", reason="expired", status=410)
    return principal, rec


async def _quarantined(svc: Services, rec: UploadRecord) -> IntegrityFailure:
    q = await svc.call(svc.db.get_quarantine, rec.upload_id)
    return IntegrityFailure(q.detail if q else "quarantined", reason=q.reason if q else "unknown")


@routes.options(BASE)
@routes.options(BASE + "{upload_id}")
async def options(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    return web.Response(status=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(svc.config.limits.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS)})


@routes.post(BASE)
async def create(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    check_resumable(request.headers.get("Tus-Resumable"))
    principal = await svc.authenticate(request)
    if "Upload-Defer-Length" in request.headers:
        raise ProtocolError("Upload-Defer-Length is not supported: send Upload-Length", reason="bad_header")
    length = parse_int("Upload-Length", request.headers.get("Upload-Length"))
    if length > svc.config.limits.max_upload_bytes:
        raise ProtocolError(f"Upload-Length {length} exceeds Tus-Max-Size {svc.config.limits.max_upload_bytes}",
                            reason="too_large", status=413)
    meta = parse_metadata(request.headers.get("Upload-Metadata"))
    sha256 = declared_sha256(meta)
    existing = await svc.call(svc.db.find_complete_upload, principal.vehicle_id, sha256)
    if existing is not None:
        svc.metrics.duplicates.inc()
        return web.Response(status=201, headers={**_done_headers(existing), "X-Avdata-Duplicate": "1",
                                                 "Location": BASE + existing.upload_id})
    now = time.time_ns()
    rec = UploadRecord(upload_id=uuid.uuid4().hex, vehicle_id=principal.vehicle_id, length_bytes=length,
                       offset_bytes=0, sha256=sha256, snapshot_id=meta.get("snapshot_id", "")[:200],
                       filename=meta.get("filename", "")[:255], status=IN_PROGRESS, created_ns=now,
                       expires_ns=now + int(svc.config.limits.upload_expiry_s * 1e9))
    svc.files.create(rec.upload_id)
    await svc.call(svc.db.create_upload, rec)
    svc.metrics.uploads_created.inc()
    location = {"Location": BASE + rec.upload_id}
    has_body = request.headers.get("Content-Type") == OFFSET_CONTENT_TYPE and request.can_read_body
    if has_body or length == 0:
        resp = await _write(svc, request, rec, 0)
        resp.set_status(201)
        resp.headers.update(location)
        return resp
    return web.Response(status=201, headers=_headers(**{"Upload-Offset": "0", **location,
                                                        "Upload-Expires": http_date(rec.expires_ns)}))


@routes.head(BASE + "{upload_id}")
async def head(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    _, rec = await _owned(svc, request)
    if rec.status == IN_PROGRESS and rec.offset_bytes == rec.length_bytes:
        with contextlib.suppress(UploadNotFound):  # completed meanwhile: report what the row says now
            await finish_stalled(svc, rec)
        got = await svc.call(svc.db.get_upload, rec.upload_id)
        if got is None:
            raise UploadNotFound(f"no upload with id {rec.upload_id}")
        rec = got
    if rec.status == QUARANTINED:  # never let "offset == length" read as delivered
        raise await _quarantined(svc, rec)
    headers = _headers(**{"Upload-Offset": str(rec.offset_bytes), "Upload-Length": str(rec.length_bytes),
                          "X-Avdata-Status": rec.status})
    if rec.status == IN_PROGRESS:
        headers["Upload-Expires"] = http_date(rec.expires_ns)
    if rec.status == COMPLETE:
        headers["X-Avdata-Segments"] = ",".join(rec.segment_ids)
    return web.Response(status=200, headers=headers)


@routes.patch(BASE + "{upload_id}")
async def patch(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    t0 = time.perf_counter()
    try:
        _, rec = await _owned(svc, request)
        if request.headers.get("Content-Type") != OFFSET_CONTENT_TYPE:
            raise ProtocolError(f"PATCH Content-Type must be {OFFSET_CONTENT_TYPE}",
                                reason="bad_content_type", status=415)
        offset = parse_int("Upload-Offset", request.headers.get("Upload-Offset"))
        if request.content_length is None and "chunked" not in request.headers.get("Transfer-Encoding", ""):
            raise ProtocolError("PATCH needs Content-Length (or chunked transfer encoding): a body without "
                                "a length cannot be told apart from a cut connection",
                                reason="length_required", status=411)
        if rec.status == COMPLETE:  # already stored (e.g. a duplicate): nothing more to send
            return web.Response(status=204, headers=_done_headers(rec))
        if rec.status == QUARANTINED:
            raise await _quarantined(svc, rec)
        if offset != rec.offset_bytes:
            raise ProtocolError(f"Upload-Offset {offset} does not match the server's {rec.offset_bytes}; "
                                "HEAD for the current offset", reason="offset_mismatch", status=409)
        return await _write(svc, request, rec, offset)
    finally:
        svc.metrics.patch_seconds.observe(time.perf_counter() - t0)


async def _write(svc: Services, request: web.Request, rec: UploadRecord, offset: int) -> web.Response:
    """Take the lease, stream the body, record the new offset, and complete when it is all there."""
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    limit = rec.length_bytes - offset
    if request.content_length is not None and request.content_length > limit:
        raise ProtocolError(f"PATCH of {request.content_length} bytes runs past Upload-Length "
                            f"({limit} bytes left)", reason="too_large", status=413)
    with svc.exclusive(rec.upload_id):
        lease_ns = int(svc.config.limits.lock_lease_s * 1e9)
        rec = await svc.call(svc.db.claim_upload, rec.upload_id, svc.owner, time.time_ns(), lease_ns)
        if rec.offset_bytes != offset:
            await svc.call(svc.db.release_upload, rec.upload_id, svc.owner)
            raise ProtocolError(f"Upload-Offset {offset} does not match the server's {rec.offset_bytes}",
                                reason="offset_mismatch", status=409)
        try:
            result = await svc.files.write_body(rec.upload_id, offset, limit, request.content, checksum)
        except BaseException:
            await svc.call(svc.db.release_upload, rec.upload_id, svc.owner)
            raise
        # the bytes are durable now: only then is the new offset recorded and reported
        new_offset = offset + result.written
        complete = not result.interrupted and new_offset == rec.length_bytes
        expires = time.time_ns() + int(svc.config.limits.upload_expiry_s * 1e9)
        rec = await svc.call(svc.db.advance_upload, rec.upload_id, svc.owner, new_offset, result.written,
                             expires, not complete)
        svc.metrics.bytes_received.inc(result.written)
        if not complete:
            return web.Response(status=204, headers=_headers(**{"Upload-Offset": str(rec.offset_bytes),
                                                                "Upload-Expires": http_date(rec.expires_ns)}))
        ingested = await complete_upload(svc, rec)
    return web.Response(status=204, headers=_headers(**{"Upload-Offset": str(rec.length_bytes),
                                                        "X-Avdata-Segments": ",".join(ingested.segment_ids)}))


@routes.delete(BASE + "{upload_id}")
async def terminate(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    _, rec = await _owned(svc, request)
    if rec.status != IN_PROGRESS:
        raise ProtocolError(f"upload {rec.upload_id} is {rec.status}; only uploads in progress can be "
                            "terminated", reason="not_terminable", status=409)
    await svc.call(svc.db.claim_upload, rec.upload_id, svc.owner, time.time_ns(),
                   int(svc.config.limits.lock_lease_s * 1e9))
    await svc.call(svc.db.delete_upload, rec.upload_id)
    svc.files.delete(rec.upload_id)
    return web.Response(status=204, headers=_headers())


@routes.get(BASE + "{upload_id}/status")
async def status(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    upload_id = check_upload_id(request.match_info["upload_id"])
    principal = await svc.authenticate(request)
    rec = await svc.call(svc.db.get_upload, upload_id)
    if rec is None:
        raise UploadNotFound(f"no upload with id {upload_id}")
    auth.require_owner(principal, rec.vehicle_id, f"upload {upload_id}")
    body: dict[str, object] = {"upload_id": rec.upload_id, "status": rec.status, "offset": rec.offset_bytes,
                               "length": rec.length_bytes, "segments": list(rec.segment_ids)}
    if rec.status == QUARANTINED:
        q = await svc.call(svc.db.get_quarantine, upload_id)
        body.update(reason=q.reason if q else "unknown", detail=q.detail if q else "")
    return web.json_response(body, headers={"Cache-Control": "no-store"})
