"""The object store: the :class:`ObjectStore` protocol and its key rules, a local directory
(embedded default) and S3, chosen by name.

Not imported here (they load an optional client library): :mod:`cloud_ingest.storage.objects.s3`.
"""

from cloud_ingest.storage.objects.local import LocalObjectStore
from cloud_ingest.storage.objects.protocol import (
    NO_OVERWRITE,
    PREFIXES,
    ObjectStore,
    check_key,
)
from cloud_ingest.storage.objects.registry import BACKENDS, open_store

__all__ = [
    "BACKENDS",
    "NO_OVERWRITE",
    "PREFIXES",
    "LocalObjectStore",
    "ObjectStore",
    "check_key",
    "open_store",
]
