"""``create_app(config)``: the aiohttp application of the ingest daemon.

Resources live in ``app.cleanup_ctx`` (opened in order, closed in reverse): the metadata DB, the
upload files, the object store and metrics as one :class:`Services` under a typed ``AppKey``,
then the expiration sweeper. Errors leave handlers as typed :class:`IngestError`s; one middleware
turns them into answers (JSON body, tus headers) and counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from cloud_ingest import api, tus
from cloud_ingest.calibration_registry import CalibrationMetrics, CalibrationRegistry
from cloud_ingest.config import CloudConfig
from cloud_ingest.db import open_db
from cloud_ingest.errors import AuthError, IngestError, IntegrityFailure, RateLimited, UploadLocked
from cloud_ingest.metrics import Metrics
from cloud_ingest.object_store import open_store
from cloud_ingest.ratelimit import RateLimiter
from cloud_ingest.services import SERVICES, Services
from cloud_ingest.sweeper import run_sweeper
from cloud_ingest.tus_headers import TUS_VERSION
from cloud_ingest.upload_store import UploadFiles

log = logging.getLogger(__name__)
CONFIG: web.AppKey[CloudConfig] = web.AppKey("config", CloudConfig)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        svc.metrics.rejected.labels(exc.reason).inc()
        if exc.status >= 500:
            log.error("request failed", extra={"path": request.path, "reason": exc.reason, "detail": exc.detail})
        resp = error_response(exc)
    except web.HTTPException as exc:
        resp = exc
    except Exception:
        log.exception("unexpected error", extra={"path": request.path, "method": request.method})
        svc.metrics.rejected.labels("internal").inc()
        resp = web.json_response({"error": "internal", "detail": "internal error; see the daemon log"},
                                 status=500, headers={"Tus-Resumable": TUS_VERSION})
    svc.metrics.requests.labels(request.method, str(resp.status)).inc()
    return resp


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = await asyncio.to_thread(open_db, cfg.db.backend, sqlite_path=str(cfg.sqlite_path), dsn=cfg.db.dsn,
                                 schema=cfg.db.schema, pool_size=cfg.db.pool_size)
    metrics = Metrics()
    app[SERVICES] = Services(config=cfg, db=db, files=UploadFiles(cfg.uploads_dir, cfg.limits.read_chunk_bytes),
                             store=open_store(cfg), metrics=metrics,
                             limiter=RateLimiter(cfg.limits.rate_per_s, cfg.limits.rate_burst),
                             calibrations=CalibrationRegistry(db, CalibrationMetrics(metrics.registry)))
    try:
        yield
    finally:
        await asyncio.to_thread(db.close)


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
