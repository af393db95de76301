"""The MCAP bytes of a snapshot: records written by hand around mcap's record builder.

Split from :mod:`shared.snapshot` (which owns the file lifecycle and the public API) because the
byte layout is its own concern: chunk building, lz4-or-not per channel, the summary section and the
I/O thread that hashes and writes in order. Every file written here is read by the official
``mcap`` reader (tests in ``tests/shared/test_snapshot.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lz4.block
import lz4.frame
from mcap.data_stream import RecordBuilder
from mcap.opcode import Opcode
from mcap.records import (
    Attachment,
    AttachmentIndex,
    Channel,
    ChunkIndex,
    DataEnd,
    Footer,
    Header,
    MessageIndex,
    Metadata,
    MetadataIndex,
    Schema,
    Statistics,
    SummaryOffset,
)

from shared.messages import SensorMessage

PROFILE = "avdata"
MESSAGE_ENCODING = "avdata.record.v2"
#: Encodings whose payloads are compressed already: their chunks are stored without lz4.
PRECOMPRESSED = frozenset({"h265", "h264"})
_MAGIC = b"\x89MCAP0\r\n"
_MESSAGE_HEAD = struct.Struct("<BQHIQQ")  # opcode, record length, channel, sequence, log, publish
_CHUNK_HEAD = struct.Struct("<BQQQQII")   # opcode, record length, start, end, size, crc, len("lz4")
_IN_FLIGHT = 3
_PROBE_MIN, _PROBE_SLICES, _PROBE_SLICE = 64 * 1024, 8, 4096


def compressible(msg: SensorMessage) -> bool:
    """Whether lz4 is worth running on this channel, judged from its first message.

    Small payloads always are (their headers compress); a large one is probed with lz4 on 8 slices
    of 4 KiB spread over it and must shrink by at least 10%.
    """
    if msg.encoding in PRECOMPRESSED:
        return False
    view = memoryview(msg.payload).cast("B")
    if len(view) < _PROBE_MIN:
        return True
    step = len(view) // _PROBE_SLICES
    sample = b"".join(view[i * step: i * step + _PROBE_SLICE] for i in range(_PROBE_SLICES))
    return len(lz4.block.compress(sample, store_size=False)) < 0.9 * len(sample)


class _Output:
    """The ``.active`` file, written and hashed in order on one I/O thread.

    Hashing, CRCs and the kernel copy run there while the caller compresses the next chunk (all of
    them release the GIL); ``size`` is the logical size, known at once for offsets. At most
    ``_IN_FLIGHT`` jobs wait, bounding memory; an error of the I/O thread (ENOSPC, EIO) is raised
    to the caller by the next :meth:`submit` or by :meth:`close`.
    """

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb", buffering=1024 * 1024)  # noqa: SIM115 - closed by close/abort
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-io")
        self._pending: deque[Future[None]] = deque()

    def submit(self, job: Callable[[], None], size: int) -> None:
        """Run ``job`` (which writes exactly ``size`` bytes through :meth:`put`) after earlier ones."""
        while len(self._pending) >= _IN_FLIGHT:
            self._pending.popleft().result()
        self._pending.append(self._io.submit(job))
        self.size += size

    def write(self, data: bytes) -> None:
        self.submit(lambda: self.put(data), len(data))

    def put(self, data: bytes | memoryview) -> None:
        """On the I/O thread: hash and write ``data``."""
        self.sha256.update(data)
        self.file.write(data)

    def close(self) -> None:
        """Wait for every write, then flush, fsync and close the file."""
        try:
            while self._pending:
                self._pending.popleft().result()
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            self._io.shutdown(wait=True)
        self.file.close()

    def abort(self) -> None:
        """Stop writing and close without caring what failed (the file is about to be deleted)."""
        for job in self._pending:
            job.cancel()
        self._io.shutdown(wait=True)
        with contextlib.suppress(OSError):  # a buffered tail cannot be flushed to a full disk
            self.file.close()


@dataclass
class _Chunk:
    """Messages waiting to become one MCAP chunk; ``parts`` are the records' buffers, uncopied."""

    compression: str
    parts: list[bytes | memoryview] = field(default_factory=list)
    size: int = 0
    start_ns: int = 0
    end_ns: int = 0
    index: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, channel_id: int, seq: int, log_ns: int, publish_ns: int, head: bytes,
            payload: bytes | memoryview) -> None:
        if not self.parts:
            self.start_ns = self.end_ns = log_ns
        self.start_ns, self.end_ns = min(self.start_ns, log_ns), max(self.end_ns, log_ns)
        self.index.setdefault(channel_id, []).append((log_ns, self.size))
        length = 22 + len(head) + len(payload)
        self.parts.append(_MESSAGE_HEAD.pack(Opcode.MESSAGE, length, channel_id, seq, log_ns, publish_ns)
                          + head)
        self.parts.append(payload)
        self.size += 9 + length


class _McapFile:
    """The MCAP records of one snapshot: header, chunks and their indexes, summary, footer."""

    def __init__(self, out: _Output, chunk_size: int) -> None:
        self.out, self.chunk_size = out, chunk_size
        self.schemas: list[Schema] = []
        self.channels: list[Channel] = []
        self.chunk_indexes: list[ChunkIndex] = []
        self.attachment_indexes: list[AttachmentIndex] = []
        self.metadata_indexes: list[MetadataIndex] = []
        self.stats = Statistics(attachment_count=0, channel_count=0, channel_message_counts={},
                                chunk_count=0, message_count=0, message_end_time=0, message_start_time=0,
                                metadata_count=0, schema_count=0)
        self.open_chunks: dict[str, _Chunk] = {}
        out.write(_MAGIC)
        self._record(Header(profile=PROFILE, library="avdata"))

    def _record(self, record: Any) -> tuple[int, int]:
        builder = RecordBuilder()
        record.write(builder)
        offset = self.out.size
        self.out.write(builder.end())  # type: ignore[no-untyped-call]
        return offset, self.out.size - offset

    def schema(self, schema: Schema) -> None:
        self.schemas.append(schema)
        self._record(schema)

    def channel(self, channel: Channel) -> None:
        self.channels.append(channel)
        self.stats.channel_message_counts[channel.id] = 0
        self._record(channel)

    def message(self, compression: str, channel_id: int, seq: int, log_ns: int, publish_ns: int,
                head: bytes, payload: bytes | memoryview) -> None:
        chunk = self.open_chunks.get(compression)
        if chunk is None:
            chunk = self.open_chunks[compression] = _Chunk(compression)
        chunk.add(channel_id, seq, log_ns, publish_ns, head, payload)
        st = self.stats
        if st.message_count == 0:
            st.message_start_time = st.message_end_time = log_ns
        st.message_start_time = min(st.message_start_time, log_ns)
        st.message_end_time = max(st.message_end_time, log_ns)
        st.message_count += 1
        st.channel_message_counts[channel_id] += 1
        if chunk.size >= self.chunk_size:
            self._write_chunk(self.open_chunks.pop(compression))

    def _write_chunk(self, chunk: _Chunk) -> None:
        parts, compression = chunk.parts, chunk.compression
        data: list[bytes | memoryview] = parts
        if compression == "lz4":
            # Large independent blocks: lz4 skips incompressible stretches fastest that way.
            comp = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False)
            packed = [comp.begin(), *(comp.compress(p) for p in parts), comp.flush()]
            if sum(len(p) for p in packed) < chunk.size:
                data = packed
            else:
                compression = ""
        stored = sum(len(d) for d in data)
        name = compression.encode()
        start = self.out.size
        length = _CHUNK_HEAD.size + len(name) + 8 + stored

        def job() -> None:
            crc = 0
            for part in parts:
                crc = zlib.crc32(part, crc)
            self.out.put(_CHUNK_HEAD.pack(Opcode.CHUNK, length - 9, chunk.start_ns, chunk.end_ns, chunk.size,
                                          crc, len(name)) + name + struct.pack("<Q", stored))
            for part in data:
                self.out.put(part)

        self.out.submit(job, length)
        builder = RecordBuilder()
        offsets: dict[int, int] = {}
        for channel_id, records in chunk.index.items():
            offsets[channel_id] = start + length + builder.count
            MessageIndex(channel_id=channel_id, records=records).write(builder)
        index_length = builder.count
        self.out.write(builder.end())  # type: ignore[no-untyped-call]
        self.stats.chunk_count += 1
        self.chunk_indexes.append(ChunkIndex(
            message_start_time=chunk.start_ns, message_end_time=chunk.end_ns, chunk_start_offset=start,
            chunk_length=length, message_index_offsets=offsets, message_index_length=index_length,
            compression=compression, compressed_size=stored, uncompressed_size=chunk.size))

    def metadata(self, name: str, data: dict[str, str]) -> None:
        offset, length = self._record(Metadata(name=name, metadata=data))
        self.metadata_indexes.append(MetadataIndex(offset=offset, length=length, name=name))
        self.stats.metadata_count += 1

    def attachment(self, t_ns: int, name: str, media_type: str, data: bytes) -> None:
        offset, length = self._record(Attachment(create_time=t_ns, log_time=t_ns, name=name,
                                                 media_type=media_type, data=data))
        self.attachment_indexes.append(AttachmentIndex(
            offset=offset, length=length, log_time=t_ns, create_time=t_ns, data_size=len(data), name=name,
            media_type=media_type))
        self.stats.attachment_count += 1

    def flush_chunks(self) -> None:
        for key in sorted(self.open_chunks):
            self._write_chunk(self.open_chunks.pop(key))

    def finish(self) -> None:
        """Write the data end, the summary (with offsets to each group), the footer and the magic."""
        self.flush_chunks()
        self._record(DataEnd(data_section_crc=0))
        self.stats.schema_count, self.stats.channel_count = len(self.schemas), len(self.channels)
        summary_start = self.out.size
        builder = RecordBuilder()
        offsets: list[SummaryOffset] = []
        groups: list[tuple[Opcode, list[Any]]] = [
            (Opcode.SCHEMA, list(self.schemas)), (Opcode.CHANNEL, list(self.channels)),
            (Opcode.STATISTICS, [self.stats]), (Opcode.CHUNK_INDEX, list(self.chunk_indexes)),
            (Opcode.ATTACHMENT_INDEX, list(self.attachment_indexes)),
            (Opcode.METADATA_INDEX, list(self.metadata_indexes))]
        for opcode, records in groups:
            group_start = builder.count
            for record in records:
                record.write(builder)
            offsets.append(SummaryOffset(group_opcode=opcode, group_start=summary_start + group_start,
                                         group_length=builder.count - group_start))
        offset_start = summary_start + builder.count
        for summary_offset in offsets:
            summary_offset.write(builder)
        summary = builder.end()  # type: ignore[no-untyped-call]
        crc = zlib.crc32(struct.pack("<BQQQ", Opcode.FOOTER, 20, summary_start, offset_start),
                         zlib.crc32(summary))
        self.out.write(summary)
        self._record(Footer(summary_start=summary_start, summary_offset_start=offset_start, summary_crc=crc))
        self.out.write(_MAGIC)
