"""A JetStream consumer of segment announcements that processes each message id once.

The relay delivers at least once (a killed relay re-publishes the rows it had in flight, and a
consumer that dies before acking gets the message again). :class:`SegmentConsumer` keeps the ids
it has processed in :class:`ProcessedIds` (in memory, optionally an fsynced append-only file) and
acks without handling any id it has seen. Order of work per message: handle, record the id, ack;
so a crash between handling and recording re-runs the handler once (handlers should be
idempotent, e.g. keyed by segment id), and a crash between recording and acking is absorbed.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cloud_ingest.announce import Announcement
from cloud_ingest.config import RelayConfig
from shared.errors import ContractError


class ProcessedIds:
    """A set of processed message ids; with ``path``, every id is appended and fsynced there."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._ids: set[str] = set()
        if path is not None and path.exists():
            self._ids.update(line for line in path.read_text().splitlines() if line)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, msg_id: str) -> None:
        if msg_id in self._ids:
            return
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(msg_id + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        self._ids.add(msg_id)


Handler = Callable[[str, Announcement], Awaitable[None]]


class SegmentConsumer:
    """A durable pull consumer on the relay's stream, deduplicating by ``Nats-Msg-Id``.

    ``duplicates`` counts messages skipped as already processed; ``malformed`` those whose payload
    is not an announcement (acked and skipped, never fatal)."""

    def __init__(self, js: JetStreamContext, cfg: RelayConfig, durable: str,
                 processed: ProcessedIds | None = None, vehicle: str = ">") -> None:
        self.js, self.cfg, self.durable = js, cfg, durable
        self.subject = f"{cfg.subject_prefix}.{vehicle}"
        self.processed = processed if processed is not None else ProcessedIds()
        self.duplicates = 0
        self.malformed = 0
        self._sub: JetStreamContext.PullSubscription | None = None

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.ALL, ack_wait=30.0)
            self._sub = await self.js.pull_subscribe(self.subject, durable=self.durable,
                                                     stream=self.cfg.stream, config=config)
        return self._sub

    async def poll(self, handle: Handler, batch: int = 256, timeout_s: float = 1.0) -> int:
        """Fetch up to ``batch`` messages; handle the new ones; return how many were handled."""
        sub = await self._subscription()
        try:
            msgs = await sub.fetch(batch, timeout=timeout_s)
        except NatsTimeout:
            return 0
        handled = 0
        for msg in msgs:
            mid = (msg.headers or {}).get("Nats-Msg-Id", "")
            if not mid or mid in self.processed:
                self.duplicates += bool(mid)
                self.malformed += not mid
                await msg.ack()
                continue
            try:
                ann = Announcement.decode(msg.data)
            except ContractError:
                self.malformed += 1
                await msg.ack()
                continue
            await handle(mid, ann)
            self.processed.add(mid)
            await msg.ack()
            handled += 1
        return handled

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
