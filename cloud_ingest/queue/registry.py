"""Queue back-ends by name: ``outbox`` (the embedded default) and ``nats`` (NATS JetStream).

:func:`open_feed` gives a consumer its :class:`~cloud_ingest.queue.protocol.SegmentFeed`; the
``nats`` entry imports nats-py and connects only when chosen. Its feed owns the connection and
closes it with the feed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import UnknownBackend
from cloud_ingest.queue.protocol import Delivery, SegmentFeed
from cloud_ingest.storage.metadata.protocol import MetadataDB


async def _outbox(cfg: CloudConfig, db: MetadataDB, name: str) -> SegmentFeed:
    from cloud_ingest.queue.outbox import OutboxFeed

    return OutboxFeed(db, name, poll_interval_s=cfg.relay.poll_interval_s)


class _OwningFeed:
    """A feed that closes the NATS connection it was opened with."""

    def __init__(self, feed: SegmentFeed, close: Callable[[], Awaitable[None]]) -> None:
        self._feed, self._close = feed, close

    @property
    def malformed(self) -> int:
        return self._feed.malformed

    async def fetch(self, limit: int, timeout_s: float) -> list[Delivery]:
        return await self._feed.fetch(limit, timeout_s)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._feed.ack(deliveries)

    async def close(self) -> None:
        await self._feed.close()
        await self._close()


async def _nats(cfg: CloudConfig, db: MetadataDB, name: str) -> SegmentFeed:
    from cloud_ingest.queue.jetstream import JetStreamFeed
    from cloud_ingest.queue.relay import connect, ensure_stream

    nc = await connect(cfg.relay)
    js = nc.jetstream()
    await ensure_stream(js, cfg.relay)
    return _OwningFeed(JetStreamFeed(js, cfg.relay, durable=name), nc.close)


#: Back-end name → opener of a consumer's feed.
BACKENDS: dict[str, Callable[[CloudConfig, MetadataDB, str], Awaitable[SegmentFeed]]] = {
    "outbox": _outbox, "nats": _nats}


async def open_feed(backend: str, cfg: CloudConfig, db: MetadataDB, consumer: str) -> SegmentFeed:
    """The feed of consumer ``consumer`` on the back-end named ``backend``."""
    try:
        opener = BACKENDS[backend]
    except KeyError:
        raise UnknownBackend(f"unknown queue back-end {backend!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return await opener(cfg, db, consumer)
