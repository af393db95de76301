"""The object store contract: the :class:`ObjectStore` protocol and the key rules every back-end applies.

Key layout (set by the callers, checked here):
``raw/{YYYY-MM-DD}/{vehicle}/{segment_id}/...`` write-once (an existing key is never replaced),
``processed/{YYYY-MM-DD}/{segment_id}/...`` append-only (new keys only, nothing replaced),
``synthetic/{experiment}/{scenario}/...`` freely rewritable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from cloud_ingest.errors import ObjectKeyError

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREFIXES = ("raw", "processed", "synthetic")
#: Prefixes whose keys are never replaced once written.
NO_OVERWRITE = ("raw", "processed")


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
