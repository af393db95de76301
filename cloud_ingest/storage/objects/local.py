"""The object store on a local directory (the embedded default).

Every write is atomic: a temporary file in the same directory is fsynced, then linked into place
(``link`` fails if the name exists, so the no-overwrite rule of
:mod:`cloud_ingest.storage.objects.protocol` holds even between daemons racing on the same key),
and the directory is fsynced.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from cloud_ingest.errors import ObjectExists
from cloud_ingest.storage.objects.protocol import NO_OVERWRITE, check_key
from shared.snapshot import fsync_dir, sha256_file


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
            if check_key(key)[0] in NO_OVERWRITE:
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

