"""The ``avdata-cloud enrich run`` process: a ``segments.raw`` consumer under systemd.

One segment at a time through :class:`cloud_ingest.queue.consumer.SegmentConsumer` on the feed
``[enrich] queue`` names (the embedded outbox by default, NATS JetStream at scale), as consumer
``<consumer>-v<version>``: each announcement's effect commits once, with its inbox row.

- **Ready**: ``READY=1`` once the DB is migrated, the version registered, the maps loaded, the
  feed open and ``/metrics`` listening (``STATUS=`` says where).
- **Watchdog**: a task pings ``WATCHDOG=1`` while the loop makes progress: a poll ends every
  ``poll_timeout_s`` when idle, and a segment may take up to ``segment_timeout_s``; past that the
  pings stop, so systemd restarts a process wedged inside one segment.
- **Drain**: SIGTERM or SIGINT sends ``STOPPING=1``; the segment in flight finishes and commits (a
  segment still waiting for its processed outputs is abandoned uncommitted and comes again), then
  the process exits 0. SIGKILL at any instant is safe too (see :mod:`.runtime`).
- **Bad input never stops it**: a segment that cannot be enriched is recorded as a failure with its
  reason (:data:`~.errors.SegmentInputError.reason`) and counted; any other error of the
  computation is recorded as ``internal_error``. Only the backends' errors (DB, store, queue) are
  retried: the feed is reopened after a back-off, so the delivery comes again.

``until_idle`` stops at the first poll that finds nothing new; ``once`` after one segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.consumer import SegmentConsumer
from cloud_ingest.queue.registry import open_feed
from cloud_ingest.storage.metadata.protocol import Effect, Tx
from downstream.enrich.errors import BackendUnavailable, ProcessedMissing, SegmentInputError
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.runtime import Runtime, count
from shared.sdnotify import Notifier
from shared.segment import Segment

log = logging.getLogger(__name__)
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Stopped(Exception):
    """A stop was asked while a segment waited for its processed outputs: nothing is committed."""


@dataclass
class _Outcome:
    kind: str
    reason: str = ""
    result: EnrichmentResult | None = None
    started: float = 0.0
    ran: bool = False


class Enricher:
    """The consumer loop of one process over ``rt`` (see the module docstring)."""

    def __init__(self, rt: Runtime, stop: asyncio.Event, on_done: Callable[[str], None] | None = None) -> None:
        self.rt, self.stop, self.on_done = rt, stop, on_done
        self.progress_at = time.monotonic()
        self.enriched = self.failed = 0
        self._last: _Outcome | None = None

    async def open_consumer(self) -> SegmentConsumer:
        cfg = self.rt.cfg
        feed = await open_feed(cfg.queue, self.rt.cloud, self.rt.db, cfg.consumer_name)
        return SegmentConsumer(feed, self.rt.db, cfg.consumer_name)

    async def _wait_processed(self, seg: Segment, missing: list[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rt.cfg.processed_wait_s
        while missing:
            if self.stop.is_set():
                raise _Stopped
            if loop.time() >= deadline:
                raise ProcessedMissing(f"segment {seg.segment_id}: {missing[0]} did not appear within "
                                       f"{self.rt.cfg.processed_wait_s:g} s; once the ingest daemon's repair pass "
                                       "has written it, run 'avdata-cloud enrich run --failed'")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.25)
            self.progress_at = time.monotonic()
            missing = await asyncio.to_thread(self.rt.reader.missing_processed, seg)

    async def handle(self, ann: Announcement) -> Effect:
        """The effect of one announcement (computed with no transaction open)."""
        out = self._last = _Outcome("enriched", started=time.monotonic())
        self.progress_at = out.started
        try:
            seg = await asyncio.to_thread(self.rt.reader.segment, ann.segment_id, ann.record)
            missing = await asyncio.to_thread(self.rt.reader.missing_processed, seg)
            if missing:
                await self._wait_processed(seg, missing)
            effect, out.result, wrote = await asyncio.to_thread(self.rt.enrich, seg)
            if wrote:
                self.rt.metrics.outputs_written.inc()
        except (_Stopped, BackendUnavailable):
            raise
        except SegmentInputError as exc:
            out.kind, out.reason, effect = "failed", exc.reason, self.rt.failed(ann.segment_id, exc)
            log.warning("segment not enrichable", extra={"segment_id": ann.segment_id, "reason": exc.reason,
                                                         "error": str(exc)})
        except Exception as exc:  # a bug or an input no check foresaw: recorded, and the service goes on
            out.kind, out.reason, effect = "failed", "internal_error", self.rt.failed(ann.segment_id, exc)
            log.exception("segment enrichment failed", extra={"segment_id": ann.segment_id})

        def marked(tx: Tx) -> None:
            effect(tx)
            out.ran = True
        return marked

    def _account(self, consumer: SegmentConsumer, duplicates_before: int) -> bool:
        """Count what the last poll committed; whether it handled any delivery."""
        m = self.rt.metrics
        m.malformed.set(consumer.malformed)
        dups = consumer.duplicates - duplicates_before
        m.segments.labels("duplicate").inc(dups)
        out, self._last = self._last, None
        if out is not None and out.ran:
            count(m, out.kind, out.result, out.reason)
            m.seconds.observe(time.monotonic() - out.started)
            if out.kind == "enriched":
                self.enriched += 1
            else:
                self.failed += 1
            if self.on_done is not None:
                self.on_done(out.kind)
            log.info("segment done", extra={"outcome": out.kind, "reason": out.reason,
                                            "segment_id": out.result.segment_id if out.result else None,
                                            "seconds": round(time.monotonic() - out.started, 3)})
        return dups > 0 or out is not None

    async def run(self, consumer: SegmentConsumer, until_idle: bool = False, once: bool = False) -> None:
        """Consume until :attr:`stop` is set (or idle / after one segment, see the module docstring)."""
        failures = 0
        try:
            while not self.stop.is_set():
                self.progress_at = time.monotonic()
                before_dups, before_malformed = consumer.duplicates, consumer.malformed
                try:
                    await consumer.poll(self.handle, batch=1, timeout_s=self.rt.cfg.poll_timeout_s)
                except _Stopped:
                    break
                except Exception as exc:  # the DB, the store or the queue: nothing of this delivery committed
                    stage = "segment" if isinstance(exc, BackendUnavailable) else "queue"
                    self.rt.metrics.backend_errors.labels(stage).inc()
                    self._last = None
                    wait = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                    failures += 1
                    log.warning("backend error; reopening the feed", extra={"stage": stage, "error": repr(exc),
                                                                           "retry_in_s": wait})
                    with contextlib.suppress(Exception):
                        await consumer.close()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), wait)
                    consumer = await self.open_consumer()
                    continue
                failures = 0
                handled = self._account(consumer, before_dups) or consumer.malformed != before_malformed
                if (once and self.enriched + self.failed) or (until_idle and not handled):
                    break
        finally:
            with contextlib.suppress(Exception):
                await consumer.close()

    async def watchdog(self, notifier: Notifier) -> None:
        """Ping the watchdog while the loop makes progress (see the module docstring)."""
        interval = notifier.watchdog_interval_s()
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.progress_at < self.rt.cfg.segment_timeout_s:
                notifier.watchdog()
            notifier.status(f"enriched {self.enriched}, failed {self.failed}")


async def _metrics_site(rt: Runtime) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=rt.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": rt.cfg.version})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, rt.cfg.metrics_host, rt.cfg.metrics_port).start()
    return runner


async def serve_enrich(rt: Runtime, notifier: Notifier, *, until_idle: bool = False, once: bool = False,
                       on_done: Callable[[str], None] | None = None) -> int:
    """Run the process over an opened runtime until stopped (or idle / once); returns the exit status.
    ``on_done(outcome)`` is called after each committed segment (a progress bar)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            notifier.stopping()
            log.info("stopping: finishing the segment in flight")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    enricher = Enricher(rt, stop, on_done)
    consumer = await enricher.open_consumer()
    try:
        runner = await _metrics_site(rt)
    except BaseException:
        await consumer.close()
        raise
    watchdog = asyncio.create_task(enricher.watchdog(notifier))
    try:
        addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
        log.info("enriching", extra={"queue": rt.cfg.queue, "consumer": rt.cfg.consumer_name,
                                     "version": rt.cfg.version, "fingerprint": rt.fingerprint,
                                     "metrics": addresses, "maps": [str(m.path) for m in rt.cfg.maps]})
        notifier.ready(status=f"enrich v{rt.cfg.version} on {rt.cfg.queue}; metrics on {', '.join(addresses)}")
        await enricher.run(consumer, until_idle=until_idle, once=once)
        if not stop.is_set():
            notifier.stopping()
    finally:
        watchdog.cancel()
        await runner.cleanup()
    log.info("stopped", extra={"enriched": enricher.enriched, "failed": enricher.failed})
    return 0
