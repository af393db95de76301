"""Typed configuration of the cloud ingest daemon (``cloud.toml``), loaded once in ``main``.

Example::

    data_dir = "var/cloud"
    host = "127.0.0.1"
    port = 8080
    [limits]
    max_upload_bytes = 4294967296
    upload_expiry_s = 86400.0
    [db]
    backend = "postgres"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=avdata"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Limits:
    """Request and upload limits; sizes in bytes, times in seconds, rates in requests/s."""

    max_upload_bytes: int = 8 * 1024**3
    upload_expiry_s: float = 24 * 3600.0
    sweep_interval_s: float = 60.0
    lock_lease_s: float = 120.0
    read_chunk_bytes: int = 256 * 1024
    rate_per_s: float = 50.0
    rate_burst: int = 200

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive")
        if self.upload_expiry_s <= 0 or self.sweep_interval_s <= 0 or self.lock_lease_s <= 0:
            raise ValueError("upload_expiry_s, sweep_interval_s and lock_lease_s must be positive")
        if self.read_chunk_bytes < 4096:
            raise ValueError("read_chunk_bytes must be at least 4096")
        if self.rate_per_s <= 0 or self.rate_burst < 1:
            raise ValueError("rate_per_s must be positive and rate_burst at least 1")


@dataclass(frozen=True)
class DBConfig:
    """Metadata DB back-end: ``sqlite`` (``<data_dir>/meta.sqlite3``) or ``postgres`` (``dsn``).

    ``schema`` (PostgreSQL only) puts every table in that schema, so several deployments or test
    runs can share one database.
    """

    backend: str = "sqlite"
    dsn: str = ""
    schema: str = "public"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "postgres" and not self.dsn:
            raise ValueError("backend 'postgres' needs a dsn")
        if not self.schema.replace("_", "").isalnum():
            raise ValueError(f"schema must be letters, digits and '_', got {self.schema!r}")


@dataclass(frozen=True)
class CloudConfig:
    """The whole daemon configuration; ``data_dir`` holds the DB, uploads and the object store."""

    data_dir: Path = Path("var/cloud")
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)
    db: DBConfig = field(default_factory=DBConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "meta.sqlite3"
