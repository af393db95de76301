"""The resources one daemon holds, reached by handlers through a typed ``web.AppKey``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.calibration.registry import CalibrationStore
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import UploadLocked
from cloud_ingest.metrics import Metrics
from cloud_ingest.pipeline import IngestDeps
from cloud_ingest.storage.metadata.protocol import MetadataDB, UploadRecord
from cloud_ingest.storage.objects.protocol import ObjectStore
from cloud_ingest.tus.ratelimit import RateLimiter
from cloud_ingest.tus.upload_store import UploadFiles

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Services:
    """Everything a request handler may touch. ``owner`` names this daemon in upload leases (see
    :mod:`cloud_ingest.tus.owner`); ``busy`` holds the uploads a request of this daemon is writing or
    completing (a lease cannot tell two requests of the same owner apart)."""

    config: CloudConfig
    db: MetadataDB
    files: UploadFiles
    store: ObjectStore
    metrics: Metrics
    limiter: RateLimiter
    calibrations: CalibrationStore | None = None
    #: Runs heavy post-commit work (the calibrated outputs) off the request path; ``None`` = inline.
    background: Callable[[Callable[[], None]], object] | None = None
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    busy: set[str] = field(default_factory=set)

    @contextlib.contextmanager
    def exclusive(self, upload_id: str) -> Iterator[None]:
        """Hold ``upload_id`` for one request of this daemon; 409 (retry) while another holds it."""
        if upload_id in self.busy:
            raise UploadLocked(f"upload {upload_id} is being written or completed by another request; "
                               "retry after HEAD")
        self.busy.add(upload_id)
        try:
            yield
        finally:
            self.busy.discard(upload_id)

    def ingest_deps(self) -> IngestDeps:
        """What the ingest pipeline needs, with this daemon's metrics hooks."""
        return IngestDeps(db=self.db, store=self.store, quarantine_dir=self.config.quarantine_dir,
                          calibrations=self.calibrations,
                          join_gap_ns=int(self.config.segments.join_gap_s * 1e9),
                          no_calibration=lambda reason: self.metrics.segments_without_calibration.labels(
                              reason).inc(),
                          background=self.background,
                          bad_sensor_data=lambda reason: self.metrics.calibration_input_errors.labels(reason).inc())

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking DB/store call in a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def authenticate_and_get(self, request: web.Request,
                                   upload_id: str) -> tuple[auth.Principal, UploadRecord | None]:
        """:meth:`authenticate` and the upload's record in one worker-thread hop (the PATCH path)."""
        def both() -> tuple[auth.Principal, UploadRecord | None]:
            principal = auth.authenticate(self.db, request.headers.get("X-Avdata-Vehicle"),
                                          request.headers.get("Authorization"))
            return principal, self.db.get_upload(upload_id)

        principal, rec = await self.call(both)
        self.limiter.take(principal.vehicle_id, time.monotonic())
        return principal, rec

    async def authenticate(self, request: web.Request) -> auth.Principal:
        """401 without valid credentials, 429 over the vehicle's rate; else the vehicle."""
        principal = await self.call(auth.authenticate, self.db, request.headers.get("X-Avdata-Vehicle"),
                                    request.headers.get("Authorization"))
        self.limiter.take(principal.vehicle_id, time.monotonic())
        return principal


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
