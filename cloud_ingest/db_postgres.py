"""PostgreSQL back-end of the metadata DB (fleet scale), on psycopg 3.

Several daemons share one database. Writers of one upload are serialised with
``pg_advisory_xact_lock`` on a 64-bit hash of the upload id (released at commit); outbox inserts
take one fixed advisory lock so offsets (a ``BIGSERIAL``) commit in increasing order and a reader
that consumes by offset never skips a row that commits late.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from cloud_ingest.db_sql import SQLMetadataDB, Tx

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
    """:class:`cloud_ingest.db.MetadataDB` on PostgreSQL; tables live in ``schema``."""

    dialect = "postgres"

    def __init__(self, dsn: str, schema: str = "public", connect_timeout_s: int = 5) -> None:
        if not schema.replace("_", "").isalnum():
            raise ValueError(f"bad schema name {schema!r}")
        self.schema = schema
        self._conn = psycopg.connect(dsn, connect_timeout=connect_timeout_s, autocommit=True)
        self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._conn.execute(f'SET search_path TO "{schema}"')
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            yield _PgTx(cur)

    def _lock_upload(self, tx: Tx, upload_id: str) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (advisory_key("upload:" + upload_id),))

    def _lock_outbox(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (_OUTBOX_LOCK,))

    def drop_schema(self) -> None:
        """Remove the schema and every table in it (tests, and tearing down a deployment)."""
        with self._lock:
            self._conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        with self._lock:
            self._conn.close()
