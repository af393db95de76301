"""The embedded queue: the outbox table, consumed by offset.

The outbox row of a segment is written in the same transaction as the segment row
(:meth:`cloud_ingest.db.MetadataDB.commit_ingest`), so a segment is announced if and only if it is
stored. A consumer reads rows after its last committed offset; committing stores that offset under
the consumer's name, so a restarted consumer resumes where it stopped (at-least-once delivery).
"""

from __future__ import annotations

from cloud_ingest.db import MetadataDB, OutboxRow


class OutboxReader:
    """Reads the outbox for consumer ``name``; :meth:`commit` records progress durably."""

    def __init__(self, db: MetadataDB, name: str) -> None:
        self.db = db
        self.name = name
        self.committed = db.get_consumer_offset(name)
        self.position = self.committed

    def poll(self, limit: int = 100) -> list[OutboxRow]:
        """Up to ``limit`` rows after the current position (in offset order); advances the position."""
        rows = self.db.read_outbox(self.position, limit)
        if rows:
            self.position = rows[-1].offset
        return rows

    def commit(self) -> None:
        """Persist the position: rows up to it will not be delivered to this consumer again."""
        self.db.set_consumer_offset(self.name, self.position)
        self.committed = self.position
