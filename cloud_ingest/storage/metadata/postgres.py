"""PostgreSQL back-end of the metadata DB (fleet scale), on psycopg 3.

Several daemons share one database. Writers of one upload are serialised with
``pg_advisory_xact_lock`` on a 64-bit hash of the upload id (released at commit); outbox inserts
take one fixed advisory lock so offsets (a ``BIGSERIAL``) commit in increasing order and a reader
that consumes by offset never skips a row that commits late. Relays claim outbox rows
``FOR UPDATE SKIP LOCKED`` in a short transaction and publish after it committed (see
:mod:`cloud_ingest.storage.metadata.queue_tables`).
"""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from cloud_ingest.storage.metadata.protocol import DBOptions, Tx
from cloud_ingest.storage.metadata.sql import SQLMetadataDB

_OUTBOX_LOCK = 0x61766461_6F757462  # "avdaoutb"


def advisory_key(name: str) -> int:
    """A signed 64-bit lock key derived from ``name`` (stable across processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class _PgTx(Tx):
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return self._cur.fetchall() if self._cur.description else []

    def changed(self) -> int:
        return self._cur.rowcount


class PostgresDB(SQLMetadataDB):
    """:class:`cloud_ingest.storage.metadata.protocol.MetadataDB` on PostgreSQL; tables live in ``schema``."""

    dialect = "postgres"
    _claim_lock = " FOR UPDATE SKIP LOCKED"

    @classmethod
    def from_options(cls, opts: DBOptions) -> PostgresDB:
        """Open the database named by ``opts`` (see :class:`DBOptions`)."""
        return cls(opts.dsn, opts.schema, pool_size=opts.pool_size)

    def __init__(self, dsn: str, schema: str = "public", connect_timeout_s: int = 5, pool_size: int = 4) -> None:
        if not schema.replace("_", "").isalnum():
            raise ValueError(f"bad schema name {schema!r}")
        self.schema, self._dsn, self._timeout_s = schema, dsn, connect_timeout_s
        # A small pool: one connection serialised every DB call of the daemon behind one lock.
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        first = self._connect()
        first.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        first.execute(f'SET search_path TO "{schema}"')
        self._pool.put(first)
        for _ in range(max(1, pool_size) - 1):
            self._pool.put(self._connect())
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._dsn, connect_timeout=self._timeout_s, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._pool.get()
        try:
            yield conn
        finally:
            if conn.broken and not self._closed:  # the server went away: the next user reconnects
                conn.close()
                with suppress(psycopg.Error):
                    conn = self._connect()
            self._pool.put(conn)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Tx]:
        with self._connection() as conn:
            if conn.closed:
                raise psycopg.OperationalError("PostgreSQL connection lost and not re-established")
            with conn.transaction(), conn.cursor() as cur:
                if not durable:
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                yield _PgTx(cur)

    def _lock_named(self, tx: Tx, name: str) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (advisory_key(name),))

    def _lock_outbox(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (_OUTBOX_LOCK,))

    def drop_schema(self) -> None:
        """Remove the schema and every table in it (tests, and tearing down a deployment)."""
        with self._connection() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        self._closed = True
        while not self._pool.empty():
            self._pool.get_nowait().close()
