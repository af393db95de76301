"""The metadata DB under test: each back-end in turn (``db_config`` of the parent conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from tests.cloud_ingest.conftest import open_config_db


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    yield d
    d.close()
