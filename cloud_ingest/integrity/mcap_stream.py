"""A push parser for MCAP: feed bytes as they arrive, get records as soon as they are complete.

The daemon runs it over each upload while the PATCH bodies stream in, so the integrity scan is
done when the last byte lands. :class:`McapStream` checks what a seeking reader would check and
more, in one pass and without reading the file back:

- the leading and trailing magic, record framing, and that a Header opens the data section;
- every chunk: known compression, declared uncompressed size, CRC of the uncompressed records
  (when the writer set one), and the records inside (schemas, channels, messages only);
- every attachment's CRC; the summary section's CRC against the footer's (when set);
- that the summary's chunk indexes name exactly the chunks found in the data section, and that the
  statistics record counts exactly the messages found (readers that seek trust those indexes).

Records are handed to a :class:`McapHandler`; views passed to it are only valid during the call.
The first problem raises :class:`McapFormatError` and the stream refuses further input.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Protocol

import lz4.frame

from cloud_ingest.errors import IntegrityFailure

MAGIC = b"\x89MCAP0\r\n"
HEADER, FOOTER, SCHEMA, CHANNEL, MESSAGE, CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
CHUNK_INDEX, ATTACHMENT, STATISTICS, DATA_END = 0x08, 0x09, 0x0B, 0x0F
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_MESSAGE = struct.Struct("<HIQQ")
_REC = struct.Struct("<BQ")
#: Largest record (and decompressed chunk) accepted: far above any snapshot chunk, far below RAM.
MAX_RECORD_BYTES = 256 * 1024 * 1024


class McapFormatError(IntegrityFailure):
    """The bytes are not a well-formed, complete MCAP file (quarantine reason ``mcap_invalid``)."""

    reason = "mcap_invalid"


class McapHandler(Protocol):
    """What the parser reports; ``data`` views are only valid during the call."""

    def channel(self, channel_id: int, topic: str) -> None: ...

    def message(self, channel_id: int, log_time_ns: int, data: memoryview) -> None: ...

    def attachment(self, name: str, data: memoryview) -> None: ...


def _string(body: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(body, pos)
    end = pos + 4 + n
    if end > len(body):
        raise McapFormatError(f"string of {n} bytes runs past its record")
    try:
        return str(body[pos + 4:end], "utf-8"), end
    except UnicodeDecodeError as exc:
        raise McapFormatError("a string field is not UTF-8") from exc


def _decompress(compression: str, data: memoryview, size: int) -> bytes:
    if size > MAX_RECORD_BYTES:
        raise McapFormatError(f"chunk declares {size} uncompressed bytes (limit {MAX_RECORD_BYTES})")
    if compression == "":
        return bytes(data)
    if compression == "zstd":
        return _unzstd(data, size)
    if compression != "lz4":
        raise McapFormatError(f"chunk compression {compression!r} is not supported (lz4, zstd or none)")
    try:  # max_length bounds the output, whatever the frame claims
        out: bytes = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=size + 1)
    except RuntimeError as exc:
        raise McapFormatError(f"lz4 chunk does not decompress: {exc}") from exc
    return out


def _unzstd(data: memoryview, size: int) -> bytes:
    try:
        import zstandard
    except ImportError as exc:
        raise McapFormatError("chunk compression 'zstd' needs the zstandard package") from exc
    try:
        out: bytes = zstandard.ZstdDecompressor().decompress(data, max_output_size=size + 1)
    except zstandard.ZstdError as exc:
        raise McapFormatError(f"zstd chunk does not decompress: {exc}") from exc
    return out


class McapStream:
    """Incremental MCAP parser; see the module docstring. ``offset`` counts bytes consumed."""

    def __init__(self, handler: McapHandler) -> None:
        self.handler = handler
        self.offset = 0
        self.messages = 0
        self.done = False
        self._buf = bytearray()
        self._started = self._data_ended = self._header_seen = False
        self._summary_start = 0
        self._summary_crc = 0
        self._chunks: set[tuple[int, int]] = set()
        self._indexed: set[tuple[int, int]] = set()
        self._stat_messages: int | None = None
        self._failed: McapFormatError | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Consume ``data``; raise :class:`McapFormatError` at the first problem (and on every call after)."""
        if self._failed is not None:
            raise self._failed
        if self.done and len(data):
            self._fail(McapFormatError("bytes after the closing magic"))
        self._buf += data
        try:
            used = self._parse()
        except McapFormatError as exc:
            self._fail(exc)
        except (struct.error, ValueError, IndexError) as exc:
            self._fail(McapFormatError(f"record fields run past their record: {exc}"))
        del self._buf[:used]
        self.offset += used

    def _fail(self, exc: McapFormatError) -> None:
        self._failed = exc
        self._buf = bytearray()
        raise exc

    def finish(self) -> None:
        """Everything has been fed: the file must have ended with its footer and magic."""
        if self._failed is not None:
            raise self._failed
        if not self.done:
            self._fail(McapFormatError(f"file ends after {self.offset + len(self._buf)} bytes without "
                                       "its footer (truncated?)"))
        if self._indexed and self._indexed != self._chunks:
            self._fail(McapFormatError(f"summary indexes {len(self._indexed)} chunks but the data section "
                                       f"holds {len(self._chunks)} (or at other offsets)"))
        if self._stat_messages is not None and self._stat_messages != self.messages:
            self._fail(McapFormatError(f"statistics count {self._stat_messages} messages, the file holds "
                                       f"{self.messages}"))

    def _parse(self) -> int:
        buf = self._buf
        i = 0
        with memoryview(buf) as mv:
            if not self._started:
                if len(buf) < len(MAGIC):
                    return 0
                if bytes(mv[:8]) != MAGIC:
                    raise McapFormatError("not an MCAP file (bad leading magic)")
                self._started, i = True, 8
            while len(buf) - i >= 9 and not self.done:
                op, length = _REC.unpack_from(buf, i)
                if length > MAX_RECORD_BYTES:
                    raise McapFormatError(f"record 0x{op:02x} of {length} bytes (limit {MAX_RECORD_BYTES})")
                if op == FOOTER and len(buf) - i >= 9 + length + 8:
                    self._footer(mv[i + 9:i + 9 + length], mv[i:i + 9], self.offset + i)
                    if bytes(mv[i + 9 + length:i + 17 + length]) != MAGIC:
                        raise McapFormatError("bad closing magic")
                    i += 9 + length + 8
                    self.done = True
                    break
                if op == FOOTER or len(buf) - i < 9 + length:
                    break
                with mv[i:i + 9 + length] as whole:
                    self._record(op, whole[9:], self.offset + i, whole)
                i += 9 + length
            if self.done and i < len(buf):
                raise McapFormatError("bytes after the closing magic")
        return i

    def _record(self, op: int, body: memoryview, at: int, whole: memoryview) -> None:
        if not self._header_seen:
            if op != HEADER:
                raise McapFormatError(f"the first record is 0x{op:02x}, not a Header")
            self._header_seen = True
            return
        if self._data_ended:
            self._summary_crc = zlib.crc32(whole, self._summary_crc)
            self._summary(op, body)
            return
        handlers: dict[int, Callable[[memoryview, int], None]] = {
            CHUNK: self._chunk, ATTACHMENT: self._attachment, DATA_END: self._data_end}
        if op in handlers:
            handlers[op](body, at)
        elif op in (SCHEMA, CHANNEL, MESSAGE):
            self._inner(op, body)

    def _inner(self, op: int, body: memoryview) -> None:
        if op == CHANNEL:
            (cid,) = _U16.unpack_from(body, 0)
            topic, _ = _string(body, 4)
            self.handler.channel(cid, topic)
        elif op == MESSAGE:
            cid, _seq, log_time, _pub = _MESSAGE.unpack_from(body, 0)
            self.messages += 1
            self.handler.message(cid, log_time, body[_MESSAGE.size:])

    def _chunk(self, body: memoryview, at: int) -> None:
        _start, _end, size, crc = struct.unpack_from("<QQQI", body, 0)
        compression, pos = _string(body, 28)
        (n,) = _U64.unpack_from(body, pos)
        if pos + 8 + n > len(body):
            raise McapFormatError(f"chunk at {at} holds {n} bytes of records, more than its record")
        raw = _decompress(compression, body[pos + 8:pos + 8 + n], size)
        if len(raw) != size:
            raise McapFormatError(f"chunk at {at} holds {len(raw)} bytes, its header says {size}")
        if crc and zlib.crc32(raw) != crc:
            raise McapFormatError(f"chunk at {at}: CRC mismatch (damaged in storage or transit)")
        self._chunks.add((at, len(body) + 9))
        j = 0
        with memoryview(raw) as rv:
            while j < len(raw):
                if len(raw) - j < 9:
                    raise McapFormatError(f"chunk at {at} ends inside a record header")
                op, length = _REC.unpack_from(raw, j)
                if j + 9 + length > len(raw):
                    raise McapFormatError(f"a record in the chunk at {at} runs past the chunk")
                if op not in (SCHEMA, CHANNEL, MESSAGE):
                    raise McapFormatError(f"record 0x{op:02x} is not allowed inside a chunk")
                self._inner(op, rv[j + 9:j + 9 + length])
                j += 9 + length

    def _attachment(self, body: memoryview, at: int) -> None:
        name, pos = _string(body, 16)
        _media, pos = _string(body, pos)
        (n,) = _U64.unpack_from(body, pos)
        end = pos + 8 + n
        (crc,) = _U32.unpack_from(body, end)
        if crc and zlib.crc32(body[:end]) != crc:
            raise McapFormatError(f"attachment {name!r} at {at}: CRC mismatch")
        self.handler.attachment(name, body[pos + 8:end])

    def _data_end(self, body: memoryview, at: int) -> None:
        self._data_ended = True
        self._summary_start = at + 9 + len(body)

    def _summary(self, op: int, body: memoryview) -> None:
        if op == CHUNK_INDEX:
            (start, length) = struct.unpack_from("<QQ", body, 16)
            self._indexed.add((start, length))
        elif op == STATISTICS:
            (self._stat_messages,) = _U64.unpack_from(body, 0)

    def _footer(self, body: memoryview, prefix: memoryview, at: int) -> None:
        if not self._data_ended:
            raise McapFormatError("footer before the data section ended")
        summary_start, _summary_offset_start, crc = struct.unpack_from("<QQI", body, 0)
        has_summary = at > self._summary_start
        if summary_start != (self._summary_start if has_summary else 0):
            raise McapFormatError(f"footer puts the summary at {summary_start}, it starts at "
                                  f"{self._summary_start}")
        if crc:
            got = zlib.crc32(bytes(prefix) + bytes(body[:16]), self._summary_crc)
            if got != crc:
                raise McapFormatError("summary section CRC mismatch")
