"""Upload files in progress (``<data_dir>/uploads/<upload_id>.part``) and their running hashes.

A PATCH body is streamed to the file in chunks and hashed as it arrives, twice: the whole-file
SHA-256 (checked against the declared hash when the last byte lands) and, when the request carries
``Upload-Checksum``, the chunk's own digest. The running whole-file hash is kept in memory keyed by
``(upload_id, offset)``; when it is missing or stale (a restart, or another daemon wrote the last
chunk) it is rebuilt from the bytes on disk, so a resumed upload never needs a client re-send.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from cloud_ingest.errors import ChecksumMismatch, ProtocolError
from cloud_ingest.tus_headers import Checksum

_REHASH_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of one PATCH body: bytes kept, and whether the client stopped sending early."""

    written: int
    interrupted: bool


class UploadFiles:
    """The ``uploads/`` directory; file names are the server's own ids, never client input."""

    def __init__(self, root: Path, read_chunk_bytes: int) -> None:
        self.root = root
        self.read_chunk_bytes = read_chunk_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._hashers: dict[str, tuple[int, Any]] = {}

    def path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        with open(self.path(upload_id), "xb"):
            pass
        self._hashers[upload_id] = (0, hashlib.sha256())

    def delete(self, upload_id: str) -> None:
        self.path(upload_id).unlink(missing_ok=True)
        self._hashers.pop(upload_id, None)

    def forget(self, upload_id: str) -> None:
        """Drop the cached running hash (the file is no longer ours to append to)."""
        self._hashers.pop(upload_id, None)

    def _rehash(self, upload_id: str, offset: int) -> Any:
        h = hashlib.sha256()
        left = offset
        with open(self.path(upload_id), "rb") as fh:
            while left > 0 and (block := fh.read(min(_REHASH_BLOCK, left))):
                h.update(block)
                left -= len(block)
        if left:
            raise ProtocolError(f"upload {upload_id}: file shorter than its recorded offset", status=500,
                                reason="upload_file_short")
        return h

    async def file_hash(self, upload_id: str, offset: int) -> Any:
        """A copy of the SHA-256 state over the first ``offset`` bytes."""
        cached = self._hashers.get(upload_id)
        if cached is not None and cached[0] == offset:
            return cached[1].copy()
        h = await asyncio.to_thread(self._rehash, upload_id, offset)
        self._hashers[upload_id] = (offset, h)
        return h.copy()

    async def write_body(self, upload_id: str, offset: int, limit: int, body: aiohttp.StreamReader,
                         checksum: Checksum | None) -> WriteResult:
        """Stream ``body`` (an aiohttp ``StreamReader``) into the file at ``offset``.

        At most ``limit`` bytes are accepted (413 beyond). With ``checksum``, a mismatch or an
        interrupted body keeps nothing (460 / nothing written); without one, bytes received before
        an interruption are kept, as tus allows, so the client resumes after them.
        """
        whole = await self.file_hash(upload_id, offset)
        part = checksum.new() if checksum is not None else None
        written, interrupted = 0, False
        with open(self.path(upload_id), "r+b") as fh:
            fh.truncate(offset)  # drop bytes past the recorded offset (a failed or interrupted write)
            fh.seek(offset)
            try:
                async for chunk in body.iter_chunked(self.read_chunk_bytes):
                    if written + len(chunk) > limit:
                        fh.truncate(offset)
                        raise ProtocolError(f"PATCH body runs past Upload-Length ({limit} bytes left)",
                                            reason="too_large", status=413)
                    fh.write(chunk)
                    whole.update(chunk)
                    if part is not None:
                        part.update(chunk)
                    written += len(chunk)
            except (OSError, aiohttp.ClientError, asyncio.IncompleteReadError):
                interrupted = True
            if part is not None and (interrupted or part.digest() != checksum.digest):  # type: ignore[union-attr]
                fh.truncate(offset)
                fh.flush()
                os.fsync(fh.fileno())
                self._hashers.pop(upload_id, None)
                if interrupted:
                    return WriteResult(0, True)
                raise ChecksumMismatch(f"{checksum.algorithm} of the PATCH body does not match "  # type: ignore[union-attr]
                                       "Upload-Checksum; nothing was kept")
            fh.flush()
            await asyncio.to_thread(os.fsync, fh.fileno())
        self._hashers[upload_id] = (offset + written, whole)
        return WriteResult(written, interrupted)
