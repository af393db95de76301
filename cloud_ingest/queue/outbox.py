"""The embedded queue: the outbox table of the metadata DB, consumed by offset.

The outbox row of a segment is written in the same transaction as the segment row
(:meth:`cloud_ingest.storage.metadata.protocol.MetadataDB.commit_ingest`), so a segment is
announced if and only if it is stored. :class:`OutboxFeed` reads rows after its consumer's
committed offset; acknowledging stores the offset of the last row acknowledged in order under the
consumer's name, so a restarted consumer resumes there (at-least-once delivery: rows handed out
but not acknowledged come again). The offset is this database's own; the deliveries' message ids
are not (:func:`outbox_msg_id`), so a consumer's inbox works across feeds and databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cloud_ingest.queue.announce import Announcement, message_id
from cloud_ingest.queue.protocol import Delivery
from cloud_ingest.storage.metadata.protocol import MetadataDB, OutboxRow
from shared.errors import ContractError


def outbox_msg_id(row: OutboxRow) -> str:
    """The message id of an outbox row (:func:`cloud_ingest.queue.announce.message_id` of its
    segment and version), the same one the relay publishes it under."""
    return message_id(row.segment_id, row.version)


class OutboxFeed:
    """:class:`cloud_ingest.queue.protocol.SegmentFeed` over the outbox for consumer ``name``.

    Deliveries carry their row's offset as ``handle``; :meth:`ack` commits the highest offset up
    to which every handed-out row has been acknowledged."""

    def __init__(self, db: MetadataDB, name: str, poll_interval_s: float = 0.2) -> None:
        self.db, self.name, self.poll_interval_s = db, name, poll_interval_s
        self._committed = db.get_consumer_offset(name)
        self._position = self._committed
        self._pending: list[int] = []  # offsets handed out, in order
        self._acked: set[int] = set()
        self._malformed = 0

    @property
    def committed(self) -> int:
        """The consumer's durable offset: rows up to it are never delivered to it again."""
        return self._committed

    @property
    def malformed(self) -> int:
        return self._malformed

    async def fetch(self, limit: int, timeout_s: float) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            rows = await asyncio.to_thread(self.db.read_outbox, self._position, limit)
            out: list[Delivery] = []
            for row in rows:
                self._position = row.offset
                self._pending.append(row.offset)
                try:
                    out.append(Delivery(outbox_msg_id(row), Announcement.decode(row.payload), row.offset))
                except ContractError:
                    self._malformed += 1
                    self._acked.add(row.offset)
            if out or loop.time() >= deadline:
                if not out and rows:
                    await self._commit()
                return out
            await asyncio.sleep(min(self.poll_interval_s, max(0.0, deadline - loop.time())))

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            if not isinstance(d.handle, int):
                raise TypeError(f"delivery {d.msg_id} was not handed out by an OutboxFeed")
            self._acked.add(d.handle)
        await self._commit()

    async def _commit(self) -> None:
        upto = self._committed
        while self._pending and self._pending[0] in self._acked:
            upto = self._pending.pop(0)
            self._acked.discard(upto)
        if upto != self._committed:
            await asyncio.to_thread(self.db.set_consumer_offset, self.name, upto)
            self._committed = upto

    async def close(self) -> None:
        self._pending.clear()
        self._acked.clear()
