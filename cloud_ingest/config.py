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
    [segments]
    join_gap_s = 2.0
    [relay]
    nats_url = "nats://127.0.0.1:4222"
    stream = "SEGMENTS"
    subject_prefix = "segments.raw"
    [store]
    backend = "s3"
    bucket = "avdata"
    endpoint_url = "http://127.0.0.1:9000"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("sqlite", "postgres")
STORE_BACKENDS = ("local", "s3")


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
    pool_size: int = 4

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "postgres" and not self.dsn:
            raise ValueError("backend 'postgres' needs a dsn")
        if not 1 <= self.pool_size <= 64:
            raise ValueError(f"pool_size must be 1-64, got {self.pool_size}")
        if not self.schema.replace("_", "").isalnum():
            raise ValueError(f"schema must be letters, digits and '_', got {self.schema!r}")


@dataclass(frozen=True)
class SegmentsConfig:
    """Segment building: snapshots of one vehicle at most ``join_gap_s`` apart are joined while the
    result stays within the 20-40 s canonical length (see :mod:`cloud_ingest.segments.join`)."""

    join_gap_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.join_gap_s <= 10.0:
            raise ValueError(f"join_gap_s must be 0-10 s, got {self.join_gap_s}")


@dataclass(frozen=True)
class RelayConfig:
    """The outbox → NATS JetStream relay. ``subject_prefix`` + ``.<vehicle>`` is each subject."""

    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "SEGMENTS"
    subject_prefix: str = "segments.raw"
    max_age_s: float = 7 * 24 * 3600.0
    duplicate_window_s: float = 120.0
    batch: int = 256
    poll_interval_s: float = 0.2
    ack_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.stream.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"stream must be letters, digits, '_' or '-', got {self.stream!r}")
        parts = self.subject_prefix.split(".")
        if not all(p and p.replace("_", "").replace("-", "").isalnum() for p in parts):
            raise ValueError(f"subject_prefix must be dot-separated plain tokens, got {self.subject_prefix!r}")
        if self.max_age_s <= 0 or self.duplicate_window_s <= 0 or self.duplicate_window_s > self.max_age_s:
            raise ValueError("max_age_s and duplicate_window_s must be positive, the window within max_age_s")
        if self.batch < 1 or self.poll_interval_s <= 0 or self.ack_timeout_s <= 0:
            raise ValueError("batch must be at least 1; poll_interval_s and ack_timeout_s positive")


@dataclass(frozen=True)
class StoreConfig:
    """Object store: ``local`` (``<data_dir>/store``) or ``s3`` (any S3-compatible endpoint)."""

    backend: str = "local"
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        if self.backend not in STORE_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(STORE_BACKENDS)}, got {self.backend!r}")
        if self.backend == "s3" and not self.bucket:
            raise ValueError("backend 's3' needs a bucket")


@dataclass(frozen=True)
class CloudConfig:
    """The whole daemon configuration; ``data_dir`` holds the DB, uploads and the object store."""

    data_dir: Path = Path("var/cloud")
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)
    db: DBConfig = field(default_factory=DBConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

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
