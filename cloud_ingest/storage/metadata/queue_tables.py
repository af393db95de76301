"""The queue's tables over SQL (both back-ends): the outbox read by offset, the relay's claims, and
each consumer's inbox.

Relay claims: :meth:`QueueTables.claim_outbox` leases a batch of unpublished rows to one relay in a
short transaction that commits before anything is published, so no transaction and no row lock is
held while NATS is waited on. The relay marks the acknowledged rows published afterwards and gives
the rest back. A relay that dies keeps its rows only until the lease runs out; then any relay claims
and re-publishes them under the same message id (JetStream drops a re-publication within its
duplicate window; a consumer's inbox drops any that gets through). A lease that runs out while its
relay is still publishing (a stall longer than the lease) costs the same duplicate, never a loss.
PostgreSQL claims ``FOR UPDATE SKIP LOCKED``, so relays claiming at once take disjoint rows without
waiting; SQLite's single write lock (``BEGIN IMMEDIATE``) serialises claims, which is as correct and
costs nothing with one writer. Lease times come from the relays' clocks: they must agree to well
within a lease.

The inbox: :meth:`QueueTables.apply_once` writes ``(consumer, msg_id)`` and runs the consumer's
effect in the same transaction, so a consumer killed at any instant has applied a message with its
inbox row or neither, and a restarted consumer skips exactly what it applied.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from cloud_ingest.storage.metadata.protocol import Effect, OutboxRow, Tx
from cloud_ingest.storage.metadata.rows import OUTBOX_COLS, outbox_row

T = TypeVar("T")

#: Most values bound in one ``IN (...)`` list (SQLite allows 32766, PostgreSQL 65535).
_IN_CHUNK = 500


def _chunks(values: Sequence[T]) -> list[list[T]]:
    return [list(values[i:i + _IN_CHUNK]) for i in range(0, len(values), _IN_CHUNK)]


def _marks(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


class QueueTables(abc.ABC):
    """The outbox, relay claims and inbox part of
    :class:`cloud_ingest.storage.metadata.protocol.MetadataDB` (see the module docstring)."""

    #: Appended to the claim's ``SELECT`` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    _claim_lock: str = ""

    @abc.abstractmethod
    def transaction(self, durable: bool = True) -> AbstractContextManager[Tx]:
        """See :meth:`cloud_ingest.storage.metadata.sql.SQLMetadataDB.transaction`."""

    # -- outbox by offset (the embedded feed) --------------------------------------------
    def read_outbox(self, after_offset: int, limit: int) -> list[OutboxRow]:
        with self.transaction() as tx:
            rows = tx.run(f"SELECT {OUTBOX_COLS} FROM outbox WHERE outbox_offset > ? "
                          "ORDER BY outbox_offset LIMIT ?", (after_offset, limit))
        return [outbox_row(r) for r in rows]

    def get_consumer_offset(self, consumer: str) -> int:
        with self.transaction() as tx:
            rows = tx.run("SELECT consumed_offset FROM outbox_consumers WHERE consumer = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    def set_consumer_offset(self, consumer: str, offset: int) -> None:
        with self.transaction() as tx:
            tx.run("INSERT INTO outbox_consumers (consumer, consumed_offset) VALUES (?, ?) "
                   "ON CONFLICT (consumer) DO UPDATE SET consumed_offset = excluded.consumed_offset",
                   (consumer, offset))

    # -- relay claims --------------------------------------------------------------------
    def claim_outbox(self, owner: str, limit: int, now_ns: int, lease_ns: int) -> list[OutboxRow]:
        if not owner:
            raise ValueError("a relay claims outbox rows under a non-empty owner name")
        with self.transaction() as tx:
            rows = [outbox_row(r) for r in tx.run(
                f"SELECT {OUTBOX_COLS} FROM outbox WHERE published_ns IS NULL AND lease_until_ns < ? "
                f"ORDER BY outbox_offset LIMIT ?{self._claim_lock}", (now_ns, limit))]
            for chunk in _chunks([r.offset for r in rows]):
                tx.run(f"UPDATE outbox SET claimed_by = ?, lease_until_ns = ? WHERE outbox_offset IN "
                       f"{_marks(len(chunk))}", (owner, now_ns + lease_ns, *chunk))
        return rows

    def mark_published(self, owner: str, offsets: Sequence[int], now_ns: int,
                       release: Sequence[int] = ()) -> int:
        """Mark ``offsets`` published; give back the rows ``release`` (claimed by ``owner`` and not
        acknowledged) for the next claim. Returns how many rows were newly marked."""
        marked = 0
        with self.transaction() as tx:
            # a PubAck proves the row is in the stream, even if this relay's lease ran out meanwhile
            for chunk in _chunks(offsets):
                tx.run(f"UPDATE outbox SET published_ns = ?, claimed_by = '', lease_until_ns = 0 "
                       f"WHERE published_ns IS NULL AND outbox_offset IN {_marks(len(chunk))}", (now_ns, *chunk))
                marked += tx.changed()
            for chunk in _chunks(release):
                tx.run(f"UPDATE outbox SET claimed_by = '', lease_until_ns = 0 WHERE claimed_by = ? "
                       f"AND published_ns IS NULL AND outbox_offset IN {_marks(len(chunk))}", (owner, *chunk))
        return marked

    # -- consumers' inbox ----------------------------------------------------------------
    def applied(self, consumer: str, msg_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.transaction() as tx:
            for chunk in _chunks(msg_ids):
                found.update(str(r[0]) for r in tx.run(
                    f"SELECT msg_id FROM consumer_inbox WHERE consumer = ? AND msg_id IN {_marks(len(chunk))}",
                    (consumer, *chunk)))
        return found

    def apply_once(self, consumer: str, msg_id: str, effect: Effect, now_ns: int | None = None) -> bool:
        with self.transaction() as tx:
            # PostgreSQL: a concurrent insert of the same key waits here until the other commits
            # (then this one inserts nothing) or rolls back (then this one applies)
            tx.run("INSERT INTO consumer_inbox (consumer, msg_id, applied_ns) VALUES (?, ?, ?) "
                   "ON CONFLICT DO NOTHING", (consumer, msg_id, time.time_ns() if now_ns is None else now_ns))
            if tx.changed() != 1:
                return False
            effect(tx)
        return True
