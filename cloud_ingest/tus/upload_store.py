"""Upload files in progress (``<data_dir>/uploads/<upload_id>.part``) and their running state.

A PATCH body is received on the event loop and handed, in batches, to a worker thread that writes
it at its offset (``pwrite``), feeds the whole-file SHA-256 and the streaming integrity scan
(:class:`cloud_ingest.integrity.checks.SnapshotScanner`), and the chunk's own digest when the request
carries ``Upload-Checksum``. Receiving the next batch overlaps with writing and scanning this one,
and when the last byte lands the hash is known and the scan is done but for the footer.

What is made durable, and when (the daemon only ever reports an offset whose bytes are on disk):

- ``create``: the empty file, then the ``uploads/`` directory (fsync), before the row exists;
- each PATCH that wrote bytes: one ``fdatasync`` of the file after its last byte and before the
  new offset is recorded in the DB or answered; write-back of each batch is started at once
  (``POSIX_FADV_DONTNEED``), so that sync mostly waits for I/O already under way;
- an empty PATCH, a refused one (413, 460) and one that hit a full disk (507) sync nothing: the
  file is cut back to the last recorded offset, which is already durable.

The running state is kept in memory keyed by ``(upload_id, offset)``; when it is missing or stale
(a restart, or another daemon wrote the last chunk) it is rebuilt from the bytes on disk, so a
resumed upload never needs a client re-send.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cloud_ingest.errors import ChecksumMismatch, IngestError, ProtocolError, StorageFull
from cloud_ingest.integrity.checks import SnapshotScanner
from cloud_ingest.tus.headers import Checksum
from shared.snapshot import fsync_dir

_REHASH_BLOCK = 4 * 1024 * 1024
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_error(exc: OSError, what: str) -> IngestError:
    """A typed error for a failed write: :class:`StorageFull` (507) for a full disk, else a 500."""
    if exc.errno in _FULL:
        return StorageFull(f"{what}: {os.strerror(exc.errno or 0)}; the bytes before this request are kept, "
                           "resume from HEAD's Upload-Offset once space is freed")
    return IngestError(f"{what}: {exc}", reason="disk_error")


@dataclass
class Progress:
    """An upload's bytes so far: ``offset``, their SHA-256, and the integrity scan fed with them."""

    offset: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    scanner: SnapshotScanner = field(default_factory=SnapshotScanner)

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.scanner.feed(data)
        self.offset += len(data)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of one PATCH body: bytes kept, and whether the client stopped sending early."""

    written: int
    interrupted: bool


class _Sink:
    """Writes batches of one PATCH body at their offsets (runs in a worker thread, one batch at a time)."""

    def __init__(self, fd: int, offset: int, progress: Progress, part: Any) -> None:
        self.fd, self.pos, self.progress, self.part = fd, offset, progress, part
        self.written = 0

    def write(self, pieces: list[bytes]) -> None:
        start = self.pos
        for piece in pieces:
            view = memoryview(piece)
            while len(view):
                n = os.pwrite(self.fd, view, self.pos)
                self.pos += n
                view = view[n:]
            self.progress.update(piece)
            if self.part is not None:
                self.part.update(piece)
            self.written += len(piece)
        with contextlib.suppress(OSError):  # start write-back now; the sync at the end waits for it
            os.posix_fadvise(self.fd, start, self.pos - start, os.POSIX_FADV_DONTNEED)


class UploadFiles:
    """The ``uploads/`` directory; file names are the server's own ids, never client input."""

    def __init__(self, root: Path, read_chunk_bytes: int, batch_bytes: int = 1024 * 1024) -> None:
        self.root = root
        self.read_chunk_bytes = read_chunk_bytes
        self.batch_bytes = max(batch_bytes, read_chunk_bytes)
        root.mkdir(parents=True, exist_ok=True)
        self._progress: dict[str, Progress] = {}

    def path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        try:
            with open(self.path(upload_id), "xb"):
                pass
            fsync_dir(self.root)
        except OSError as exc:
            raise disk_error(exc, f"creating upload {upload_id}") from exc
        self._progress[upload_id] = Progress()

    def delete(self, upload_id: str) -> None:
        self.path(upload_id).unlink(missing_ok=True)
        self._progress.pop(upload_id, None)

    def forget(self, upload_id: str) -> None:
        """Drop the cached running state (the file is no longer ours to append to)."""
        self._progress.pop(upload_id, None)

    def _rebuild(self, upload_id: str, offset: int) -> Progress:
        prog = Progress()
        left = offset
        try:
            with open(self.path(upload_id), "rb") as fh:
                while left > 0 and (block := fh.read(min(_REHASH_BLOCK, left))):
                    prog.update(block)
                    left -= len(block)
        except FileNotFoundError:
            left = offset
        if left:
            raise ProtocolError(f"upload {upload_id}: file shorter than its recorded offset", status=500,
                                reason="upload_file_short")
        return prog

    async def progress(self, upload_id: str, offset: int) -> Progress:
        """The running state over the first ``offset`` bytes (rebuilt from disk when not cached)."""
        cached = self._progress.get(upload_id)
        if cached is not None and cached.offset == offset:
            return cached
        prog = await asyncio.to_thread(self._rebuild, upload_id, offset)
        self._progress[upload_id] = prog
        return prog

    async def write_body(self, upload_id: str, offset: int, limit: int, body: aiohttp.StreamReader,
                         checksum: Checksum | None) -> WriteResult:
        """Stream ``body`` into the file at ``offset``; see the module docstring for durability.

        At most ``limit`` bytes are accepted (413 beyond). With ``checksum``, a mismatch or an
        interrupted body keeps nothing (460 / nothing written); without one, bytes received before
        an interruption are kept, as tus allows, so the client resumes after them. A full disk
        raises :class:`StorageFull` and keeps nothing of this body.
        """
        if limit == 0:  # nothing may be added (the file may already be linked into the store)
            if await body.read(1):
                raise ProtocolError("PATCH body runs past Upload-Length (0 bytes left)", reason="too_large",
                                    status=413)
            return WriteResult(0, False)
        prog = await self.progress(upload_id, offset)
        self._progress.pop(upload_id, None)  # in flux until this body is durable
        loop = asyncio.get_running_loop()
        try:
            fd = os.open(self.path(upload_id), os.O_WRONLY)
        except OSError as exc:
            raise disk_error(exc, f"opening upload {upload_id}") from exc
        sink = _Sink(fd, offset, prog, checksum.new() if checksum is not None else None)
        pending: asyncio.Future[None] | None = None
        kept = False
        try:
            os.ftruncate(fd, offset)  # drop bytes past the recorded offset (a failed or interrupted write)
            batch: list[bytes] = []
            size = received = 0
            interrupted = False
            pieces = body.iter_chunked(self.read_chunk_bytes).__aiter__()
            while True:
                try:
                    piece = await pieces.__anext__()
                except StopAsyncIteration:
                    break
                except (OSError, aiohttp.ClientError, asyncio.IncompleteReadError):
                    interrupted = True  # the client went away: what arrived is kept (see above)
                    break
                received += len(piece)
                if received > limit:
                    raise ProtocolError(f"PATCH body runs past Upload-Length ({limit} bytes left)",
                                        reason="too_large", status=413)
                batch.append(piece)
                size += len(piece)
                if size >= self.batch_bytes:
                    if pending is not None:
                        await pending  # a disk error surfaces here, never as an interruption
                    pending = loop.run_in_executor(None, sink.write, batch)
                    batch, size = [], 0
            if pending is not None:
                await pending
            pending = loop.run_in_executor(None, sink.write, batch) if batch else None
            if pending is not None:
                await pending
            if checksum is not None and (interrupted or sink.part.digest() != checksum.digest):
                if interrupted:
                    return WriteResult(0, True)
                raise ChecksumMismatch(f"{checksum.algorithm} of the PATCH body does not match "
                                       "Upload-Checksum; nothing was kept")
            if sink.written:
                await asyncio.to_thread(os.fdatasync, fd)
            kept = True
        except OSError as exc:
            raise disk_error(exc, f"writing upload {upload_id} at {sink.pos}") from exc
        finally:
            if pending is not None and not pending.done():  # never close the fd under a running write
                with contextlib.suppress(BaseException):
                    await pending
            if not kept:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)
            os.close(fd)
        self._progress[upload_id] = prog
        return WriteResult(sink.written, interrupted)
