"""The metadata DB back-ends by name: ``sqlite`` (embedded default) and ``postgres`` (fleet scale).

Each entry loads its class on first use, so the embedded default never imports psycopg. Every class
satisfies :class:`~cloud_ingest.storage.metadata.protocol.MetadataDB` and opens itself from
:class:`~cloud_ingest.storage.metadata.protocol.DBOptions`; one test suite runs against each.
"""

from __future__ import annotations

from collections.abc import Callable

from cloud_ingest.errors import UnknownBackend
from cloud_ingest.storage.metadata.protocol import DBOptions
from cloud_ingest.storage.metadata.sql import SQLMetadataDB


def _sqlite() -> type[SQLMetadataDB]:
    from cloud_ingest.storage.metadata.sqlite import SQLiteDB

    return SQLiteDB


def _postgres() -> type[SQLMetadataDB]:
    from cloud_ingest.storage.metadata.postgres import PostgresDB

    return PostgresDB


#: Back-end name → loader of its class.
BACKENDS: dict[str, Callable[[], type[SQLMetadataDB]]] = {"sqlite": _sqlite, "postgres": _postgres}


def backend_class(name: str) -> type[SQLMetadataDB]:
    """The class registered as ``name``; :class:`UnknownBackend` names the known ones otherwise."""
    try:
        loader = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown metadata DB back-end {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return loader()


def open_db(backend: str, *, sqlite_path: str = "", dsn: str = "", schema: str = "public",
            pool_size: int = 4) -> SQLMetadataDB:
    """Open (and migrate) the back-end named ``backend``."""
    db = backend_class(backend).from_options(DBOptions(sqlite_path, dsn, schema, pool_size))
    db.migrate()
    return db
