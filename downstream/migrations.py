"""Versioned tables of the downstream services, in the metadata DB the ingest daemon uses.

Each service owns a *component* (``enrich``, ``mining``, ...) with its own migrations, applied in
order, each in one transaction with its row in ``downstream_schema`` (so a crash never leaves half
a migration, and two processes starting together apply each one once). The ingest daemon's own
migrations (:mod:`cloud_ingest.storage.metadata.schema`) never see these tables. Statements are
written once for both dialects, with ``{blob}`` and ``{serial_pk}`` filled per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloud_ingest.storage.metadata.schema import DIALECTS
from cloud_ingest.storage.metadata.sql import SQLMetadataDB

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS downstream_schema (component TEXT NOT NULL, version INTEGER NOT NULL, "
                 "applied_ns BIGINT NOT NULL, PRIMARY KEY (component, version))")

Migrations = Sequence[tuple[int, Sequence[str]]]


def migrate(db: SQLMetadataDB, component: str, migrations: Migrations) -> int:
    """Apply the migrations of ``component`` not yet applied; return its schema version."""
    versions = [v for v, _ in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"{component}: migration versions must be increasing from 1, got {versions}")
    subs = DIALECTS[db.dialect]
    current = 0
    for version, stmts in migrations:
        with db.transaction() as tx:
            db.lock(tx, f"downstream-migrate:{component}")
            tx.run(VERSION_TABLE)
            if tx.run("SELECT 1 FROM downstream_schema WHERE component = ? AND version = ?", (component, version)):
                current = version
                continue
            for stmt in stmts:
                tx.run(stmt.format(**subs))
            tx.run("INSERT INTO downstream_schema (component, version, applied_ns) VALUES (?, ?, 0)",
                   (component, version))
        current = version
    return current
