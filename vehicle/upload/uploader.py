"""The tus 1.0.0 client: uploads queued snapshots to the cloud, resumably, over a flaky link.

One upload: POST creates it (or the cloud answers that it already holds the file: ``Upload-Offset
== Upload-Length`` and ``X-Avdata-Duplicate: 1``, and no byte is sent); a stored upload URL is
resumed from HEAD's ``Upload-Offset``; PATCH sends ``chunk_bytes`` at a time and the confirmed
offset is persisted after each. The final PATCH's 204 is the durability acknowledgement.
Network errors and 5xx are retried with exponential backoff and jitter (tenacity); 460 starts a
new upload; 401/403/413/422 are permanent failures recorded in the queue.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from vehicle.config.tree import UploaderConfig
from vehicle.errors import ChecksumMismatch, PermanentUploadError, RetryableUploadError, UploadError
from vehicle.metrics import VehicleMetrics
from vehicle.upload.queue import QueueEntry, UploadQueue

log = logging.getLogger(__name__)

PERMANENT_STATUSES = frozenset({401, 403, 413, 422})
MAX_CHECKSUM_RESTARTS = 3


@dataclass(frozen=True, slots=True)
class UploadResult:
    """A delivered snapshot: ``duplicate`` when the cloud already held it."""

    snapshot_id: str
    duplicate: bool
    segments: tuple[str, ...]
    bytes_sent: int


class TokenBucket:
    """Caps throughput at ``rate_bytes_per_s`` (0 = unlimited); starts empty, bursts up to 1 s.

    A chunk larger than the tokens at hand borrows ahead and the caller sleeps off the debt.
    """

    def __init__(self, rate_bytes_per_s: int) -> None:
        self.rate = rate_bytes_per_s
        self._tokens = 0.0
        self._last = time.monotonic()

    async def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


def encode_metadata(pairs: dict[str, str]) -> str:
    """tus ``Upload-Metadata``: comma-separated ``key base64(value)``."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def _classify(status: int, body: str, what: str) -> UploadError:
    if status == 460:
        return ChecksumMismatch(f"{what}: the cloud's sha256 of the upload disagrees (460)")
    if status in PERMANENT_STATUSES or (400 <= status < 500 and status not in (404, 408, 409, 410, 429)):
        reason = body[:200]
        with contextlib.suppress(ValueError, AttributeError):
            reason = str(json.loads(body).get("reason", reason))
        return PermanentUploadError(f"{what}: HTTP {status}: {body[:200]}", status, reason)
    return RetryableUploadError(f"{what}: HTTP {status}")


class TusUploader:
    """Uploads :class:`UploadQueue` entries with one shared ``aiohttp.ClientSession``."""

    def __init__(self, session: aiohttp.ClientSession, cfg: UploaderConfig, vehicle_id: str,
                 queue: UploadQueue, metrics: VehicleMetrics) -> None:
        self.session, self.cfg, self.queue, self.metrics = session, cfg, queue, metrics
        self.bucket = TokenBucket(cfg.max_bytes_per_s)
        self.headers = {"Tus-Resumable": "1.0.0", "X-Avdata-Vehicle": vehicle_id,
                        "Authorization": f"Bearer {cfg.token}"}
        # Failed attempts since the server last confirmed progress. Backoff and the attempt limit
        # count these, not all attempts of the upload: on a link that drops every few MB, each cut
        # after progress is a fresh failure, so a long upload neither slows down nor runs out.
        self._stalled = 0
        self._rng = random.Random()

    def _backoff_s(self, _: RetryCallState) -> float:
        """Exponential in the stalled attempts, capped, with "equal jitter" (half fixed, half random)."""
        self._stalled += 1
        delay: float = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2.0 ** (self._stalled - 1))
        return delay * (0.5 + 0.5 * self._rng.random())

    def _give_up(self, _: RetryCallState) -> bool:
        # tenacity computes the wait (which counts this failure in ``_stalled``) before asking here.
        return self._stalled >= self.cfg.max_attempts

    async def upload(self, snapshot_id: str) -> UploadResult:
        """Deliver one queued snapshot, retrying transient failures; raises :class:`UploadError`."""
        for _ in range(MAX_CHECKSUM_RESTARTS):
            self._stalled = 0
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(RetryableUploadError), reraise=True,
                    stop=self._give_up, before_sleep=self._count_retry, wait=self._backoff_s,
                ):
                    with attempt:
                        return await self._attempt(snapshot_id)
            except ChecksumMismatch as exc:
                self.metrics.upload_retries.labels(cause="checksum_mismatch").inc()
                self.queue.reset_upload(snapshot_id, str(exc))
        raise PermanentUploadError(f"{snapshot_id}: sha256 mismatch {MAX_CHECKSUM_RESTARTS} times", 460,
                                   "checksum_mismatch")

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.metrics.upload_retries.labels(cause=type(exc).__name__ if exc else "unknown").inc()
        log.info("upload retry", extra={"attempt": state.attempt_number, "error": str(exc)})

    async def _attempt(self, snapshot_id: str) -> UploadResult:
        entry = self.queue.get(snapshot_id)
        if entry is None:
            raise PermanentUploadError(f"{snapshot_id} is not in the queue", 0, "not_queued")
        path = self.queue.path(entry)
        if not path.exists():
            raise PermanentUploadError(f"{entry.file_name} is missing on disk", 0, "file_missing")
        try:
            offset, url = await self._resume_or_create(entry)
            if url is None:
                return UploadResult(snapshot_id, True, (), 0)
            return await self._send(entry, url, offset)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise RetryableUploadError(f"{entry.file_name}: network error: {exc!r}") from exc

    async def _resume_or_create(self, entry: QueueEntry) -> tuple[int, str | None]:
        """``(offset, upload URL)``; URL ``None`` means the cloud already holds the file."""
        if entry.upload_url:
            async with self.session.head(entry.upload_url, headers=self.headers) as resp:
                if resp.status == 200:
                    offset = int(resp.headers.get("Upload-Offset", "0"))
                    if offset < entry.size_bytes:
                        return offset, entry.upload_url
                    # Complete but unacknowledged: creating again gets the duplicate answer.
                elif resp.status not in (404, 410):
                    raise _classify(resp.status, await resp.text(), f"HEAD {entry.file_name}")
            self.queue.reset_upload(entry.snapshot_id, "upload URL expired or complete")
        meta = encode_metadata({"filename": entry.file_name, "sha256": entry.sha256,
                                "snapshot_id": entry.snapshot_id})
        headers = {**self.headers, "Upload-Length": str(entry.size_bytes), "Upload-Metadata": meta}
        async with self.session.post(self.cfg.url, headers=headers) as resp:
            if resp.status != 201:
                raise _classify(resp.status, await resp.text(), f"POST {entry.file_name}")
            offset = int(resp.headers.get("Upload-Offset", "0"))
            if resp.headers.get("X-Avdata-Duplicate") == "1" and offset == entry.size_bytes:
                return offset, None
            location = resp.headers.get("Location")
            if not location:
                raise RetryableUploadError(f"POST {entry.file_name}: 201 without a Location header")
        url = urljoin(self.cfg.url, location)
        self.queue.start(entry.snapshot_id, url)
        return offset, url

    async def _send(self, entry: QueueEntry, url: str, offset: int) -> UploadResult:
        sent = 0
        with open(self.queue.path(entry), "rb") as fh:
            while True:
                fh.seek(offset)
                chunk = fh.read(self.cfg.chunk_bytes)
                await self.bucket.take(len(chunk))
                headers = {**self.headers, "Upload-Offset": str(offset),
                           "Content-Type": "application/offset+octet-stream"}
                async with self.session.patch(url, data=chunk, headers=headers) as resp:
                    body = await resp.text()
                    if resp.status == 409:
                        raise RetryableUploadError(f"PATCH {entry.file_name}: offset {offset} conflict")
                    if resp.status in (404, 410):
                        self.queue.reset_upload(entry.snapshot_id, f"upload gone ({resp.status})")
                        raise RetryableUploadError(f"PATCH {entry.file_name}: upload gone")
                    if resp.status != 204:
                        raise _classify(resp.status, body, f"PATCH {entry.file_name}")
                    sent += len(chunk)
                    self.metrics.bytes_sent.inc(len(chunk))
                    offset = int(resp.headers.get("Upload-Offset", str(offset + len(chunk))))
                    self.queue.set_offset(entry.snapshot_id, offset)
                    self._stalled = 0
                    if offset >= entry.size_bytes:
                        segs = tuple(s for s in resp.headers.get("X-Avdata-Segments", "").split(",") if s)
                        return UploadResult(entry.snapshot_id, False, segs, sent)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Upload whatever the queue holds until ``stop`` is set; never raises on a bad upload."""
        while not stop.is_set():
            entry = self.queue.next_ready(time.time_ns())
            if entry is None:
                waiter = wake or stop
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), timeout=self.cfg.poll_s)
                if wake is not None:
                    wake.clear()
                continue
            await self.deliver(entry)

    async def deliver(self, entry: QueueEntry) -> UploadResult | None:
        """Upload one entry and record the outcome in the queue and the metrics."""
        try:
            result = await self.upload(entry.snapshot_id)
        except PermanentUploadError as exc:
            self.queue.fail(entry.snapshot_id, f"{exc.status} {exc.server_reason}".strip())
            self.metrics.uploads.labels(result="failed").inc()
            log.error("upload failed permanently", extra={"snapshot_id": entry.snapshot_id, "error": str(exc)})
            return None
        except RetryableUploadError as exc:
            delay_s = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** min(entry.attempts, 10))
            self.queue.defer(entry.snapshot_id, time.time_ns() + int(delay_s * 1e9), str(exc))
            self.metrics.uploads.labels(result="deferred").inc()
            return None
        self.queue.done(entry.snapshot_id, ",".join(result.segments))
        self.metrics.uploads.labels(result="duplicate" if result.duplicate else "delivered").inc()
        log.info("snapshot delivered", extra={"snapshot_id": entry.snapshot_id, "segments": result.segments,
                                              "duplicate": result.duplicate, "bytes_sent": result.bytes_sent})
        return result
