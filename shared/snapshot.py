"""The snapshot file format: one MCAP file per snapshot, written crash-safe.

Lifecycle (as MCAP's own writer): ``SnapshotWriter(path, ...)`` → ``add(msg, log_time_ns)`` … →
``finish(...)``. The file is written as ``<name>.mcap.active``; ``finish`` closes the MCAP summary,
fsyncs, renames to ``<name>.mcap``, fsyncs the directory and writes the sidecar
``<name>.mcap.manifest`` (the same manifest plus the file's sha256 and size). A crash leaves only
an ``.active`` file, which a restart recovers or discards; it never leaves a ``.mcap`` without its
complete contents.

Inside the file: one channel per sensor topic (schema ``avdata.SensorMessage``; message data is a
:mod:`shared.messages` record, version 2 since message encoding ``avdata.record.v2``, version 1
``msgpack`` still read), log_time = vehicle clock, publish_time = sensor clock, chunks with CRCs,
a ``avdata.snapshot`` metadata record (readable with ``mcap info``) and the manifest as the
attachment ``manifest.msgpack``. Chunks are lz4-compressed, except those of channels whose payloads
are already compressed (video, or a first payload that lz4 cannot shrink by 10%): compressing
those costs more CPU than writing them, so they are stored as they are, in chunks of their own.
The payload bytes are never copied on the way to the file except into a compressed chunk.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import (
    Channel,
    Schema,
)

from shared import messages
from shared.errors import ContractError, SnapshotError
from shared.manifest import ChannelSummary, SnapshotManifest
from shared.messages import SensorMessage
from shared.snapshot_mcap import MESSAGE_ENCODING, PRECOMPRESSED, PROFILE, _McapFile, _Output, compressible
from shared.triggers import TriggerEvent

__all__ = ["MESSAGE_ENCODING", "PRECOMPRESSED", "PROFILE", "SnapshotReader", "SnapshotWriter", "compressible",
           "read_sidecar", "sha256_file", "write_sidecar"]

# What the mcap and lz4 libraries raise on damaged bytes (lz4 frame errors are RuntimeError).
_DAMAGED = (McapError, ValueError, EOFError, OSError, KeyError, RuntimeError, struct.error)

ACTIVE_SUFFIX = ".active"
MANIFEST_SUFFIX = ".manifest"
MANIFEST_ATTACHMENT = "manifest.msgpack"
@dataclass
class _ChannelStats:
    channel_id: int
    sensor_id: str
    encoding: str
    compression: str
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    payload_bytes: int = 0


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotWriter:
    """Writes one snapshot; see the module docstring for the lifecycle and crash semantics."""

    def __init__(self, path: Path, *, chunk_size: int = 8 * 1024 * 1024) -> None:
        if path.suffix != ".mcap":
            raise ValueError(f"snapshot path must end in .mcap: {path}")
        self.path = path
        self.active_path = path.with_name(path.name + ACTIVE_SUFFIX)
        self._out = _Output(self.active_path)
        self._mcap = _McapFile(self._out, chunk_size)
        self._schema_id = 1
        self._mcap.schema(Schema(id=self._schema_id, name=messages.SCHEMA, encoding="", data=b""))
        self._channels: dict[str, _ChannelStats] = {}

    def add(self, msg: SensorMessage, log_time_ns: int) -> None:
        """Append one message; ``log_time_ns`` is its time on the vehicle clock."""
        stats = self._channels.get(msg.topic)
        if stats is None:
            cid = len(self._channels) + 1
            self._mcap.channel(Channel(id=cid, topic=msg.topic, message_encoding=MESSAGE_ENCODING,
                                       schema_id=self._schema_id,
                                       metadata={"sensor_id": msg.sensor_id, "encoding": msg.encoding}))
            stats = self._channels[msg.topic] = _ChannelStats(
                cid, msg.sensor_id, msg.encoding, "lz4" if compressible(msg) else "", first_ns=log_time_ns)
        self._mcap.message(stats.compression, stats.channel_id, msg.seq & 0xFFFFFFFF, log_time_ns,
                           msg.t_sensor_ns, msg.record_head(), msg.payload)
        stats.count += 1
        stats.first_ns = min(stats.first_ns, log_time_ns)
        stats.last_ns = max(stats.last_ns, log_time_ns)
        stats.payload_bytes += len(msg.payload)

    def channel_summaries(self) -> tuple[ChannelSummary, ...]:
        return tuple(
            ChannelSummary(topic=t, sensor_id=s.sensor_id, encoding=s.encoding, count=s.count,
                           first_ns=s.first_ns, last_ns=s.last_ns, payload_bytes=s.payload_bytes)
            for t, s in sorted(self._channels.items())
        )

    def finish(
        self, *, snapshot_id: str, vehicle_id: str, created_ns: int, start_ns: int, end_ns: int,
        triggers: tuple[TriggerEvent, ...], software_version: str, model_version: str,
        calibration_version: str,
    ) -> SnapshotManifest:
        """Close the file durably and return its manifest (with sha256 and size)."""
        manifest = SnapshotManifest(
            snapshot_id=snapshot_id, vehicle_id=vehicle_id, created_ns=created_ns,
            start_ns=start_ns, end_ns=end_ns, triggers=triggers,
            channels=self.channel_summaries(), software_version=software_version,
            model_version=model_version, calibration_version=calibration_version,
        )
        self._mcap.flush_chunks()
        self._mcap.metadata("avdata.snapshot", {
            "snapshot_id": snapshot_id, "vehicle_id": vehicle_id,
            "software_version": software_version, "model_version": model_version,
            "calibration_version": calibration_version,
            "triggers": ",".join(t.kind.value for t in triggers),
        })
        self._mcap.attachment(created_ns, MANIFEST_ATTACHMENT, "application/msgpack", manifest.encode())
        self._mcap.finish()
        self._out.close()
        os.replace(self.active_path, self.path)
        fsync_dir(self.path.parent)
        final = manifest.with_file(self._out.sha256.hexdigest(), self._out.size)
        write_sidecar(self.path, final)
        return final

    def abort(self) -> None:
        """Drop the partial file (used when a snapshot cannot be completed, e.g. the disk is full)."""
        try:
            self._out.abort()
        finally:
            self.active_path.unlink(missing_ok=True)


def write_sidecar(path: Path, manifest: SnapshotManifest) -> Path:
    """Write ``<path>.manifest`` atomically (temp file, fsync, rename)."""
    side = path.with_name(path.name + MANIFEST_SUFFIX)
    tmp = side.with_name(side.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(manifest.encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, side)
    fsync_dir(path.parent)
    return side


def read_sidecar(path: Path) -> SnapshotManifest:
    side = path.with_name(path.name + MANIFEST_SUFFIX)
    return SnapshotManifest.decode(side.read_bytes())


def sha256_file(path: Path, block: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


class SnapshotReader:
    """Reads a finished snapshot, checking chunk CRCs; every failure is a :class:`SnapshotError`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self._reader = make_reader(self._fh, validate_crcs=True)
            self.manifest = self._read_manifest()
        except ContractError:
            self._fh.close()
            raise
        except _DAMAGED as exc:
            self._fh.close()
            raise SnapshotError(f"{path.name}: not a complete MCAP snapshot: {exc}") from exc

    def _read_manifest(self) -> SnapshotManifest:
        for att in self._reader.iter_attachments():
            if att.name == MANIFEST_ATTACHMENT:
                return SnapshotManifest.decode(att.data)
        raise SnapshotError(f"{self.path.name}: no {MANIFEST_ATTACHMENT} attachment")

    def messages(self, topics: list[str] | None = None) -> Iterator[tuple[int, SensorMessage]]:
        """Yield ``(log_time_ns, message)`` in log-time order."""
        try:
            for _schema, _channel, rec in self._reader.iter_messages(topics=topics):
                yield rec.log_time, messages.from_record(rec.data)
        except ContractError:
            raise
        except _DAMAGED as exc:
            raise SnapshotError(f"{self.path.name}: unreadable message data: {exc}") from exc

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
