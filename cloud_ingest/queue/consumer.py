"""A consumer that applies each announcement once over an at-least-once :class:`SegmentFeed`.

The feed may deliver a message again (a relay re-publishing, a consumer dying before its ack).
:class:`SegmentConsumer` makes each message's effect happen once per consumer name with an inbox
in the consumer's own database (:meth:`cloud_ingest.storage.metadata.protocol.MetadataDB.apply_once`):
the message id is written to the inbox in the same transaction as the effect, so after a crash at
any instant a message is either applied with its inbox row or not at all. The crash windows:

- before the effect's commit: nothing of it is stored; the feed delivers the message again and it
  is applied then;
- after the commit, before the ack: the feed delivers it again; the inbox holds its id, so it is
  acknowledged without being applied (counted in :attr:`SegmentConsumer.duplicates`).

A handler does its slow work (fetching objects, running a model) *before* the transaction and
returns the :data:`~cloud_ingest.storage.metadata.protocol.Effect` to commit, so no database lock
is held while it works; only the effect's writes run inside. What is once is the effect in that
database: anything a handler does outside it (a file written, a request sent) may happen again on
a re-delivery and must be idempotent.

A downstream service is one of these over its feed, with its effects in its database::

    async def handle(ann: Announcement) -> Effect:
        tags = await enrich(ann)  # slow work, no transaction open
        return lambda tx: tx.run("INSERT INTO enrichment (segment_id, tags) VALUES (?, ?)",
                                 (ann.segment_id, ",".join(tags)))

    consumer = SegmentConsumer(await open_feed("nats", cfg, db, "enrichment"), db, "enrichment")
    while running:
        await consumer.poll(handle)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.protocol import Delivery, SegmentFeed
from cloud_ingest.storage.metadata.protocol import Effect


class Inbox(Protocol):
    """Where a consumer records what it applied: every
    :class:`~cloud_ingest.storage.metadata.protocol.MetadataDB` is one."""

    def applied(self, consumer: str, msg_ids: Sequence[str]) -> set[str]: ...

    def apply_once(self, consumer: str, msg_id: str, effect: Effect, now_ns: int | None = None) -> bool: ...


#: Works out what one announcement changes (outside any transaction) and returns that change.
Handler = Callable[[Announcement], Awaitable[Effect]]


class SegmentConsumer:
    """Applies the announcements of ``feed`` once each for consumer ``name``, through ``inbox``.

    ``applied`` counts effects committed by this instance; ``duplicates`` counts deliveries it
    acknowledged without applying because the inbox already held them."""

    def __init__(self, feed: SegmentFeed, inbox: Inbox, name: str) -> None:
        if not name:
            raise ValueError("a consumer needs a name: its inbox rows are kept under it")
        self.feed, self.inbox, self.name = feed, inbox, name
        self.applied = 0
        self.duplicates = 0

    @property
    def malformed(self) -> int:
        """Messages the feed skipped because they were not announcements."""
        return self.feed.malformed

    async def poll(self, handle: Handler, batch: int = 256, timeout_s: float = 1.0) -> int:
        """Fetch up to ``batch`` deliveries, apply the new ones in order, acknowledge the batch;
        return how many were applied. An error of ``handle`` or its effect propagates after the
        deliveries before it are acknowledged; that one and the rest come again."""
        deliveries = await self.feed.fetch(batch, timeout_s)
        if not deliveries:
            return 0
        # one read skips the known duplicates of the batch without running their handlers
        seen = await asyncio.to_thread(self.inbox.applied, self.name, [d.msg_id for d in deliveries])
        done: list[Delivery] = []
        applied = 0
        try:
            for d in deliveries:
                if d.msg_id not in seen:
                    effect = await handle(d.announcement)
                    if await asyncio.to_thread(self.inbox.apply_once, self.name, d.msg_id, effect):
                        applied += 1
                        seen.add(d.msg_id)
                    else:
                        self.duplicates += 1
                else:
                    self.duplicates += 1
                done.append(d)
        finally:
            self.applied += applied
            if done:
                await self.feed.ack(done)
        return applied

    async def close(self) -> None:
        await self.feed.close()
