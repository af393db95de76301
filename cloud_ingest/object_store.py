"""The object store: a :class:`ObjectStore` protocol and :class:`LocalObjectStore` on a directory.

Key layout (set by the callers, checked here):
``raw/{YYYY-MM-DD}/{vehicle}/{segment_id}/...`` write-once (an existing key is never replaced),
``processed/{YYYY-MM-DD}/{segment_id}/...`` append-only (new keys only, nothing replaced),
``synthetic/{experiment}/{scenario}/...`` freely rewritable. Every write is atomic: a temporary
file in the same directory is fsynced, then linked into place (``link`` fails if the name exists,
so the no-overwrite rule holds even between daemons racing on the same key), and the directory is
fsynced.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Protocol

from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import ObjectExists, ObjectKeyError
from shared.snapshot import fsync_dir, sha256_file

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREFIXES = ("raw", "processed", "synthetic")
_NO_OVERWRITE = ("raw", "processed")


def check_key(key: str) -> tuple[str, ...]:
    """Split an object key into safe parts; raise :class:`ObjectKeyError` otherwise."""
    parts = tuple(key.split("/"))
    if parts[0] not in PREFIXES or len(parts) < 2:
        raise ObjectKeyError(f"object key {key!r} must start with one of {', '.join(PREFIXES)}")
    for part in parts:
        if not _PART.fullmatch(part) or part in (".", ".."):
            raise ObjectKeyError(f"object key {key!r}: unsafe part {part!r}")
    return parts


class ObjectStore(Protocol):
    """Where raw snapshots and processed artefacts live."""

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
        """Store the file ``src`` under ``key`` (``move``: the store may take the file itself)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the stored object."""
        ...

    def read_bytes(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a key prefix ending at a ``/`` boundary), sorted."""
        ...


def open_store(cfg: CloudConfig) -> ObjectStore:
    """The object store named by ``cfg.store``: the local directory, or an S3 bucket."""
    if cfg.store.backend == "s3":
        from cloud_ingest.object_store_s3 import S3ObjectStore

        return S3ObjectStore.from_config(cfg.store)
    return LocalObjectStore(cfg.store_dir)


class LocalObjectStore:
    """:class:`ObjectStore` on a local directory (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (for readers on the same machine)."""
        return self.root.joinpath(*check_key(key))

    def _place(self, key: str, tmp: Path) -> None:
        """Move the fsynced ``tmp`` to ``key``'s path, honouring the no-overwrite rule."""
        final = self.path(key)
        try:
            if check_key(key)[0] in _NO_OVERWRITE:
                try:
                    os.link(tmp, final)
                except FileExistsError as exc:
                    raise ObjectExists(f"object {key} already exists and is write-once") from exc
                os.chmod(final, 0o444)
            else:
                os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)

    def _tmp(self, key: str) -> Path:
        final = self.path(key)
        missing = [d for d in (final.parent, *final.parent.parents) if not d.exists()]
        for d in reversed(missing):  # a new directory is durable once its parent is fsynced
            d.mkdir(exist_ok=True)
            fsync_dir(d.parent)
        return final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
        tmp = self._tmp(key)
        linked = False
        if move:
            try:
                os.link(src, tmp)  # same filesystem: no copy, the inode simply gains a name
                linked = True
            except OSError:
                pass
        if not linked:
            shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:  # one fsync of the data, whichever name it has now
            os.fsync(fh.fileno())
        self._place(key, tmp)
        if move:
            src.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        tmp = self._tmp(key)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._place(key, tmp)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def sha256(self, key: str) -> str:
        return sha256_file(self.path(key))

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        base = self.root.joinpath(*check_key(prefix.rstrip("/")))
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

