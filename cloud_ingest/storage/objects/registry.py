"""Object store back-ends by name: ``local`` (a directory, the embedded default) and ``s3``.

Each entry builds its store from the daemon's configuration and imports its client library only
when chosen, so the embedded default never imports boto3.
"""

from __future__ import annotations

from collections.abc import Callable

from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import UnknownBackend
from cloud_ingest.storage.objects.protocol import ObjectStore


def _local(cfg: CloudConfig) -> ObjectStore:
    from cloud_ingest.storage.objects.local import LocalObjectStore

    return LocalObjectStore(cfg.store_dir)


def _s3(cfg: CloudConfig) -> ObjectStore:
    from cloud_ingest.storage.objects.s3 import S3ObjectStore

    return S3ObjectStore.from_config(cfg.store)


#: Back-end name (``[store] backend`` in ``cloud.toml``) → factory.
BACKENDS: dict[str, Callable[[CloudConfig], ObjectStore]] = {"local": _local, "s3": _s3}


def open_store(cfg: CloudConfig) -> ObjectStore:
    """The object store named by ``cfg.store.backend``."""
    try:
        factory = BACKENDS[cfg.store.backend]
    except KeyError:
        raise UnknownBackend(f"unknown object store back-end {cfg.store.backend!r} "
                             f"(known: {', '.join(sorted(BACKENDS))})") from None
    return factory(cfg)
