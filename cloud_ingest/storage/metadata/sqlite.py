"""SQLite back-end of the metadata DB (embedded default): one file, WAL mode.

Every transaction is ``BEGIN IMMEDIATE``, which takes SQLite's single write lock at once: this
serialises writers across threads *and* across daemons sharing the file, which is exactly the
per-upload lock the lease protocol in :mod:`cloud_ingest.storage.metadata.sql` needs, and it
serialises relay claims (:mod:`cloud_ingest.storage.metadata.queue_tables`) without row locks.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloud_ingest.storage.metadata.protocol import DBOptions, Tx
from cloud_ingest.storage.metadata.sql import SQLMetadataDB


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._changed = 0

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql, tuple(params))
        self._changed = cur.rowcount
        return cur.fetchall() if cur.description else []

    def changed(self) -> int:
        return self._changed


class SQLiteDB(SQLMetadataDB):
    """:class:`cloud_ingest.storage.metadata.protocol.MetadataDB` on a local SQLite file."""

    dialect = "sqlite"

    @classmethod
    def from_options(cls, opts: DBOptions) -> SQLiteDB:
        """Open the database named by ``opts`` (see :class:`DBOptions`)."""
        return cls(Path(opts.sqlite_path))

    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                     timeout=busy_timeout_ms / 1000)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._lock = threading.Lock()
        self._durable = True

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Tx]:
        with self._lock:
            if durable != self._durable:  # WAL + NORMAL: no fsync at commit, still crash-consistent
                self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _lock_named(self, tx: Tx, name: str) -> None:
        """Nothing more to do: ``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def _lock_outbox(self, tx: Tx) -> None:
        """Nothing more to do: SQLite commits writers one at a time."""

    def close(self) -> None:
        with self._lock:
            self._conn.close()
