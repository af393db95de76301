"""``create_app(config)``: the aiohttp application of the ingest daemon.

Resources live in ``app.cleanup_ctx`` (opened in order, closed in reverse): the metadata DB, the
upload files, the object store and metrics as one :class:`Services` under a typed ``AppKey``,
then the sweeper (repair pass at start, then expiry and repair). Errors leave handlers as typed
:class:`IngestError`s; one middleware turns them into answers (JSON body, tus headers) and counts
them by reason, a full disk (``ENOSPC``/``EDQUOT``/``EFBIG``, SQLite's or PostgreSQL's "disk full")
included as 507. Requests that aiohttp refuses before any handler runs (a malformed request line,
oversized headers, a bad ``Content-Length``) are counted by the access logger that
:func:`make_runner` installs, as reason ``http_parse``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

from cloud_ingest.api import read as api
from cloud_ingest.calibration.registry import CalibrationMetrics, CalibrationRegistry
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import AuthError, IngestError, IntegrityFailure, RateLimited, StorageFull, UploadLocked
from cloud_ingest.metrics import Metrics
from cloud_ingest.services import SERVICES, Services
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.objects.registry import open_store
from cloud_ingest.sweeper import run_sweeper
from cloud_ingest.tus import handlers as tus
from cloud_ingest.tus.headers import TUS_VERSION
from cloud_ingest.tus.owner import claim_owner
from cloud_ingest.tus.ratelimit import RateLimiter
from cloud_ingest.tus.upload_store import UploadFiles, disk_error

log = logging.getLogger(__name__)
CONFIG: web.AppKey[CloudConfig] = web.AppKey("config", CloudConfig)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_COUNTED = web.ResponseKey("avdata_counted", bool)  # set on every response the middleware has counted
_HTTP_REASONS = {404: "no_route", 405: "method_not_allowed", 413: "too_large", 431: "headers_too_large"}
_SQLITE_FULL = 13  # SQLITE_FULL
_PG_DISK_FULL = "53100"


def storage_full(exc: BaseException, what: str) -> StorageFull | None:
    """The :class:`StorageFull` a foreign exception means, if it means a full disk."""
    if isinstance(exc, OSError):
        err = disk_error(exc, what)
        return err if isinstance(err, StorageFull) else None
    if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or getattr(exc, "sqlstate", None) == _PG_DISK_FULL:
        return StorageFull(f"{what}: the metadata database's disk is full; retry once space is freed")
    return None


def error_response(exc: IngestError) -> web.Response:
    """The answer for a typed error: its status, a JSON body, and the headers the client needs."""
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if isinstance(exc, IntegrityFailure):
        body = {"error": "quarantined", "reason": exc.reason, "detail": exc.detail}
    else:
        body = {"error": exc.reason, "detail": exc.detail}
    if isinstance(exc, AuthError) and exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="avdata"'
    if isinstance(exc, UploadLocked):
        headers["Retry-After"] = "1"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
    return web.json_response(body, status=exc.status, headers=headers)


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    svc = request.app[SERVICES]
    try:
        resp = await handler(request)
    except IngestError as exc:
        resp = _refused(svc, request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            resp = exc
        else:
            resp = _refused(svc, request, IngestError(f"{exc.reason}: {request.method} {request.path[:200]}",
                                                      reason=_HTTP_REASONS.get(exc.status, f"http_{exc.status}"),
                                                      status=exc.status))
    except Exception as exc:
        full = storage_full(exc, f"{request.method} {request.path[:200]}")
        if full is not None:
            resp = _refused(svc, request, full)
        else:
            log.exception("unexpected error", extra={"path": request.path, "method": request.method})
            svc.metrics.rejected.labels("internal").inc()
            resp = web.json_response({"error": "internal", "detail": "internal error; see the daemon log"},
                                     status=500, headers={"Tus-Resumable": TUS_VERSION})
    svc.metrics.requests.labels(request.method, str(resp.status)).inc()
    resp[_COUNTED] = True
    return resp


def _refused(svc: Services, request: web.Request, exc: IngestError) -> web.Response:
    svc.metrics.rejected.labels(exc.reason).inc()
    if exc.status >= 500:
        log.error("request failed", extra={"path": request.path[:200], "reason": exc.reason,
                                           "detail": exc.detail})
    return error_response(exc)


def access_logger_for(app: web.Application) -> type[AbstractAccessLogger]:
    """An access logger (aiohttp's own lines) that also counts the requests aiohttp refused before
    the middleware saw them: ``rejected{reason="http_parse"}`` and ``requests{method, status}``."""

    class Counting(AccessLogger):
        def log(self, request: Any, response: Any, time: float) -> None:
            if not response.get(_COUNTED) and SERVICES in app:
                metrics = app[SERVICES].metrics
                metrics.requests.labels(str(request.method)[:16], str(response.status)).inc()
                if response.status >= 400:
                    metrics.rejected.labels("http_parse").inc()
            super().log(request, response, time)

        @property
        def enabled(self) -> bool:
            return True

    return Counting


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner every entry point serves ``app`` with (counting refused requests, see above)."""
    return web.AppRunner(app, access_log_class=access_logger_for(app), **kwargs)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = await asyncio.to_thread(open_db, cfg.db.backend, sqlite_path=str(cfg.sqlite_path), dsn=cfg.db.dsn,
                                 schema=cfg.db.schema, pool_size=cfg.db.pool_size)
    metrics = Metrics()
    slot = await asyncio.to_thread(claim_owner, cfg.data_dir)
    # One worker for the calibrated outputs (seconds of NumPy per real segment): the final PATCH
    # acknowledges once the segment is committed; jobs cut short by a stop are redone by the repair pass.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="processed")
    app[SERVICES] = Services(config=cfg, db=db, files=UploadFiles(cfg.uploads_dir, cfg.limits.read_chunk_bytes),
                             store=open_store(cfg), metrics=metrics,
                             limiter=RateLimiter(cfg.limits.rate_per_s, cfg.limits.rate_burst),
                             calibrations=CalibrationRegistry(db, CalibrationMetrics(metrics.registry)),
                             owner=slot.name, background=pool.submit)
    try:
        yield
    finally:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(db.close)
        slot.close()


async def _sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(run_sweeper(app[SERVICES]), name="upload-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(config: CloudConfig) -> web.Application:
    """Build the daemon's application; nothing is opened until the app starts."""
    app = web.Application(middlewares=[errors_and_metrics])
    app[CONFIG] = config
    app.cleanup_ctx.append(_services_ctx)
    app.cleanup_ctx.append(_sweeper_ctx)
    app.add_routes(tus.routes)
    app.add_routes(api.routes)
    return app
