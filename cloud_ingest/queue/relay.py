"""The outbox relay: publishes announcements from the metadata DB's outbox to NATS JetStream.

Each outbox row becomes one message on ``<subject_prefix>.<vehicle>`` in the stream
(``max_age`` 7 days, ``duplicate_window`` 2 minutes by default) with the header
``Nats-Msg-Id: <segment_id>:<version>`` (:func:`cloud_ingest.queue.announce.message_id`: the same
for the same announcement from any database, never an offset). One round: claim a batch under a
lease in a short transaction that commits (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), publish with
no transaction open (pipelined ``publish_async``, acknowledged in order, within
``2 * ack_timeout_s``), then mark the acknowledged prefix published and give the rest back (see
:mod:`cloud_ingest.storage.metadata.queue_tables`). The lease is three times that bound, so a live
relay keeps its rows; a relay killed at any instant leaves unmarked only rows it had claimed, which
any relay claims again once the lease ran out and re-publishes under the same id: JetStream drops
those within the duplicate window. Delivery is at-least-once; a consumer applies each message once
through its inbox (:class:`cloud_ingest.queue.consumer.SegmentConsumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import CollectorRegistry, Counter

from cloud_ingest.config import CloudConfig, RelayConfig
from cloud_ingest.errors import RelayError
from cloud_ingest.queue.announce import subject
from cloud_ingest.queue.outbox import outbox_msg_id
from cloud_ingest.storage.metadata.protocol import MetadataDB, OutboxRow
from cloud_ingest.storage.metadata.registry import open_db
from shared.sdnotify import Notifier

log = logging.getLogger(__name__)


def stream_config(cfg: RelayConfig) -> StreamConfig:
    """The stream the relay publishes into (file storage, one subject per vehicle)."""
    return StreamConfig(name=cfg.stream, subjects=[cfg.subject_prefix + ".>"], max_age=cfg.max_age_s,
                        duplicate_window=cfg.duplicate_window_s, storage=StorageType.FILE)


async def ensure_stream(js: JetStreamContext, cfg: RelayConfig) -> None:
    """Create the stream, or bring an existing one to this configuration."""
    try:
        await js.add_stream(stream_config(cfg))
    except BadRequestError:  # exists with another configuration
        await js.update_stream(stream_config(cfg))


class RelayMetrics:
    """Counters of one relay process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.published = Counter("avdata_relay_published", "Outbox rows acknowledged by JetStream",
                                 registry=self.registry)
        self.duplicates = Counter("avdata_relay_duplicates", "PubAcks flagged duplicate (re-published rows)",
                                  registry=self.registry)
        self.failures = Counter("avdata_relay_failures", "Publish attempts that failed, by reason",
                                ["reason"], registry=self.registry)


class Relay:
    """Moves outbox rows of ``db`` to ``js`` (see the module docstring) as claim owner ``owner``
    (default: host, pid and a random tag, unique per relay)."""

    def __init__(self, db: MetadataDB, js: JetStreamContext, cfg: RelayConfig,
                 metrics: RelayMetrics | None = None, owner: str | None = None) -> None:
        self.db, self.js, self.cfg = db, js, cfg
        self.metrics = metrics if metrics is not None else RelayMetrics()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def publish_bound_s(self) -> float:
        """The longest one batch's publish takes before it gives up on the rest (s)."""
        return 2 * self.cfg.ack_timeout_s

    @property
    def lease_ns(self) -> int:
        """How long a claim is this relay's alone: three publish bounds (ns)."""
        return int(3 * self.publish_bound_s * 1e9)

    async def publish_rows(self, rows: list[OutboxRow]) -> int:
        """Publish ``rows`` pipelined; return how many, from the first, were acknowledged
        within :attr:`publish_bound_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_bound_s
        futures = []
        try:
            for row in rows:
                stall = min(self.cfg.ack_timeout_s, deadline - loop.time())
                if stall <= 0:
                    raise TimeoutError("publish bound reached while sending")
                futures.append(await self.js.publish_async(
                    subject(self.cfg.subject_prefix, row.key), row.payload,
                    headers={"Nats-Msg-Id": outbox_msg_id(row), "Avdata-Segment-Id": row.segment_id},
                    wait_stall=stall))
        except (NatsError, TimeoutError) as exc:
            self.metrics.failures.labels("publish").inc()
            log.warning("publish failed", extra={"error": repr(exc)})
        done = 0
        for fut in futures:
            try:
                ack = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            except (NatsError, TimeoutError) as exc:
                self.metrics.failures.labels("ack").inc()
                log.warning("no PubAck", extra={"error": repr(exc), "acked": done})
                break
            done += 1
            if ack.duplicate:
                self.metrics.duplicates.inc()
        for fut in futures[done:]:
            fut.cancel()
        self.metrics.published.inc(done)
        return done

    async def run_once(self) -> int:
        """Claim, publish and mark one batch; return the number of rows acknowledged."""
        rows = await asyncio.to_thread(self.db.claim_outbox, self.owner, self.cfg.batch, time.time_ns(),
                                       self.lease_ns)
        if not rows:
            return 0
        done = await self.publish_rows(rows)  # no transaction is open here
        await asyncio.to_thread(self.db.mark_published, self.owner, [r.offset for r in rows[:done]],
                                time.time_ns(), [r.offset for r in rows[done:]])
        return done

    async def run(self, stop: asyncio.Event, tick: asyncio.Event | None = None) -> None:
        """Publish until ``stop`` is set; idle ``poll_interval_s`` when the outbox is drained.

        ``tick`` is set after every round (the caller's watchdog ping)."""
        while not stop.is_set():
            try:
                n = await self.run_once()
            except Exception:
                self.metrics.failures.labels("round").inc()
                log.exception("relay round failed; retrying")
                n = 0
            if tick is not None:
                tick.set()
            if n < self.cfg.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.poll_interval_s)


async def connect(cfg: RelayConfig) -> NatsClient:
    """Connect to NATS (retrying in the background after the first success)."""
    try:
        return await nats.connect(cfg.nats_url, connect_timeout=5, max_reconnect_attempts=-1,
                                  reconnect_time_wait=0.5)
    except (NatsError, OSError) as exc:
        raise RelayError(f"cannot reach NATS at {cfg.nats_url}: {exc}") from exc


async def serve_relay(cfg: CloudConfig, notifier: Notifier) -> int:
    """The ``avdata-cloud relay`` process: READY=1 once the stream exists, drain on SIGTERM."""
    db = await asyncio.to_thread(open_db, cfg.db.backend, sqlite_path=str(cfg.sqlite_path), dsn=cfg.db.dsn,
                                 schema=cfg.db.schema)
    nc = await connect(cfg.relay)
    try:
        js = nc.jetstream()
        await ensure_stream(js, cfg.relay)
        stop, tick = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(Relay(db, js, cfg.relay).run(stop, tick))
        log.info("relaying", extra={"stream": cfg.relay.stream, "subjects": cfg.relay.subject_prefix + ".>"})
        notifier.ready(status=f"relaying to {cfg.relay.stream}")
        while not task.done():
            waiter = asyncio.ensure_future(tick.wait())
            await asyncio.wait({task, waiter}, timeout=notifier.watchdog_interval_s() or 3600.0,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if tick.is_set():
                tick.clear()
                notifier.watchdog()
        notifier.stopping()
        await task
    finally:
        await nc.close()
        await asyncio.to_thread(db.close)
    log.info("stopped")
    return 0
