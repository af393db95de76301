""":class:`cloud_ingest.storage.objects.local.ObjectStore` on any S3-compatible service, through boto3.

Same key rules as the local store (checked by :func:`check_key`); ``raw/`` and ``processed/`` are
write-once with S3 conditional writes (``If-None-Match: *``: the service itself refuses to
replace an existing key, even between daemons racing on it), ``synthetic/`` is overwritten. The
SHA-256 of each object is computed while writing and kept in its metadata (``x-amz-meta-sha256``),
so :meth:`S3ObjectStore.sha256` needs no download. One PUT per object (S3 allows 5 GB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloud_ingest.config import StoreConfig
from cloud_ingest.errors import IngestError, ObjectExists
from cloud_ingest.storage.objects.protocol import check_key

_NO_OVERWRITE = ("raw", "processed")
_EXISTS_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_BLOCK = 4 * 1024 * 1024


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """Objects in ``bucket`` under ``prefix`` (e.g. ``fleet-a/``); ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_config(cls, cfg: StoreConfig) -> S3ObjectStore:
        """A store for ``[store]`` (credentials from the usual AWS environment/profile chain)."""
        client = boto3.client("s3", endpoint_url=cfg.endpoint_url or None, region_name=cfg.region,
                              config=Config(retries={"max_attempts": 5, "mode": "standard"}))
        return cls(client, cfg.bucket, cfg.prefix)

    def _key(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    def _put(self, key: str, body: Any, sha256: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": body,
                                  "Metadata": {"sha256": sha256}}
        if check_key(key)[0] in _NO_OVERWRITE:
            kwargs["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**kwargs)
        except ClientError as exc:
            if _code(exc) in _EXISTS_CODES:
                raise ObjectExists(f"object {key} already exists and is write-once") from exc
            raise IngestError(f"S3 put {key}: {exc}", reason="object_store") from exc
        except BotoCoreError as exc:
            raise IngestError(f"S3 put {key}: {exc}", reason="object_store") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        self._put(key, data, hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
        h = hashlib.sha256()
        with open(src, "rb") as fh:
            while block := fh.read(_BLOCK):
                h.update(block)
            fh.seek(0)
            self._put(key, fh, h.hexdigest())
        if move:
            src.unlink(missing_ok=True)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return head
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise IngestError(f"S3 head {key}: {exc}", reason="object_store") from exc

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def sha256(self, key: str) -> str:
        head = self._head(key)
        if head is None:
            raise IngestError(f"object {key} does not exist", reason="object_missing")
        stored = head.get("Metadata", {}).get("sha256")
        return str(stored) if stored else hashlib.sha256(self.read_bytes(key)).hexdigest()

    def read_bytes(self, key: str) -> bytes:
        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            return data
        except ClientError as exc:
            raise IngestError(f"S3 get {key}: {exc}", reason="object_store") from exc

    def list(self, prefix: str) -> list[str]:
        check_key(prefix.rstrip("/"))
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix.rstrip("/") + "/")
        for page in pages:
            keys += [obj["Key"][len(self.prefix):] for obj in page.get("Contents", [])]
        return sorted(keys)
