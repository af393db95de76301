"""The resources one daemon holds, reached by handlers through a typed ``web.AppKey``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from aiohttp import web

from cloud_ingest import auth
from cloud_ingest.config import CloudConfig
from cloud_ingest.db import MetadataDB
from cloud_ingest.metrics import Metrics
from cloud_ingest.object_store import ObjectStore
from cloud_ingest.ratelimit import RateLimiter
from cloud_ingest.upload_store import UploadFiles

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Services:
    """Everything a request handler may touch. ``owner`` names this daemon in upload leases."""

    config: CloudConfig
    db: MetadataDB
    files: UploadFiles
    store: ObjectStore
    metrics: Metrics
    limiter: RateLimiter
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking DB/store call in a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def authenticate(self, request: web.Request) -> auth.Principal:
        """401 without valid credentials, 429 over the vehicle's rate; else the vehicle."""
        principal = await self.call(auth.authenticate, self.db, request.headers.get("X-Avdata-Vehicle"),
                                    request.headers.get("Authorization"))
        self.limiter.take(principal.vehicle_id, time.monotonic())
        return principal


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
