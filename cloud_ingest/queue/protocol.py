"""The queue contract: at-least-once delivery of segment announcements to one named consumer.

A :class:`SegmentFeed` hands out :class:`Delivery` batches; a consumer acknowledges what it has
applied, and a feed re-delivers what was not acknowledged (after a restart at the latest). It
never promises exactly-once delivery: a consumer applies each message once by keeping the ids it
applied in an inbox, committed with its effect
(:class:`cloud_ingest.queue.consumer.SegmentConsumer`). Back-ends, by name in
:mod:`cloud_ingest.queue.registry`: ``outbox`` (the metadata DB's outbox table read by offset,
the embedded default) and ``nats`` (NATS JetStream, a durable pull consumer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cloud_ingest.queue.announce import Announcement


@dataclass(frozen=True, slots=True)
class Delivery:
    """One announcement as delivered: ``msg_id`` (:func:`cloud_ingest.queue.announce.message_id`,
    ``<segment_id>:<version>``) is the same on every re-delivery and on every feed, and ``handle``
    is the back-end's own reference for acknowledging it."""

    msg_id: str
    announcement: Announcement
    handle: object = field(default=None, compare=False, repr=False)


class SegmentFeed(Protocol):
    """Segment announcements for one consumer, at least once. The outbox feed hands them out in
    commit order; JetStream in publication order per vehicle, which is commit order except where a
    failed publish was retried or several relays share the outbox. Consumers must not rely on order
    across re-deliveries."""

    @property
    def malformed(self) -> int:
        """Messages that were not announcements: skipped, acknowledged and counted here."""
        ...

    async def fetch(self, limit: int, timeout_s: float) -> list[Delivery]:
        """Up to ``limit`` deliveries; waits at most ``timeout_s`` for the first; ``[]`` when idle."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark ``deliveries`` applied: they will not be delivered to this consumer again."""
        ...

    async def close(self) -> None:
        """Release the back-end's resources (unacknowledged deliveries come back later)."""
        ...
