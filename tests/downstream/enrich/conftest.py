"""The enrichment tests use the cloud tests' NATS fixture too (the process tests' JetStream run)."""

from tests.cloud_ingest.conftest import nats_server

__all__ = ["nats_server"]
