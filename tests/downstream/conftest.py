"""Downstream tests run against both metadata back-ends, with the cloud tests' fixtures."""

from tests.cloud_ingest.conftest import cloud_config, db_config

__all__ = ["cloud_config", "db_config"]
