"""Cutting snapshots: a pending window's buffered messages → one crash-safe MCAP file.

Files live in ``<data_dir>/snapshots/`` as ``<vehicle>_<start-iso>_<snapshot_id8>.mcap`` with the
sidecar ``.mcap.manifest`` written by :mod:`shared.snapshot`. :func:`recover` runs at startup:
an ``.active`` file (a crash mid-write) is kept only if it reads back completely with valid CRCs,
and a ``.mcap`` without a readable sidecar is re-verified and its sidecar rebuilt; anything else
is deleted, so a corrupt snapshot is never queued.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import ContractError, SnapshotError
from shared.manifest import SnapshotManifest
from shared.snapshot import (
    ACTIVE_SUFFIX,
    MANIFEST_SUFFIX,
    SnapshotReader,
    SnapshotWriter,
    read_sidecar,
    sha256_file,
    write_sidecar,
)
from vehicle.buffer.ring_buffer import Item
from vehicle.errors import DiskFullError, SnapshotWriteError
from vehicle.triggers.windows import PendingWindow

log = logging.getLogger(__name__)

#: errno values that mean "no room": the filesystem, the user's quota, or the process's file size limit.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Room asked for beyond the payload bytes (MCAP records, indexes, summary, sidecar).
OVERHEAD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Versions recorded in every snapshot of this vehicle."""

    vehicle_id: str
    software_version: str
    model_version: str = ""
    calibration_version: str = ""


@dataclass(frozen=True, slots=True)
class WrittenSnapshot:
    """A finished snapshot: its file and its manifest (with sha256 and size)."""

    path: Path
    manifest: SnapshotManifest

    @property
    def priority(self) -> int:
        return max((t.priority for t in self.manifest.triggers), default=0)


def snapshot_filename(vehicle_id: str, start_ns: int, snapshot_id: str) -> str:
    """``<vehicle>_<YYYYMMDDTHHMMSS.mmmZ>_<first 8 of id>.mcap`` (no colons, sorts by time)."""
    when = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
    iso = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond // 1000:03d}Z"
    return f"{vehicle_id}_{iso}_{snapshot_id.replace('-', '')[:8]}.mcap"


def write_snapshot(
    directory: Path, window: PendingWindow, items: dict[str, list[Item]], meta: SnapshotMeta,
    *, snapshot_id: str | None = None, clock_ns: Callable[[], int] = time.time_ns,
) -> WrittenSnapshot:
    """Write ``items`` (per topic, time-sorted) durably; log_time is each item's buffer time."""
    snapshot_id = snapshot_id or str(uuid.uuid4())
    path = directory / snapshot_filename(meta.vehicle_id, window.start_ns, snapshot_id)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writer = SnapshotWriter(path)
    except OSError as exc:
        raise _write_error(f"cannot create {path.name}: {exc}", exc, items) from exc
    try:
        for t_ns, msg in heapq.merge(*items.values(), key=lambda it: it[0]):
            writer.add(msg, t_ns)
        manifest = writer.finish(
            snapshot_id=snapshot_id, vehicle_id=meta.vehicle_id, created_ns=clock_ns(),
            start_ns=window.start_ns, end_ns=window.end_ns, triggers=window.triggers,
            software_version=meta.software_version, model_version=meta.model_version,
            calibration_version=meta.calibration_version,
        )
    except OSError as exc:
        writer.abort()
        # A failure after the rename (the sidecar) must not leave an unqueued file behind either.
        path.unlink(missing_ok=True)
        for leftover in (MANIFEST_SUFFIX, MANIFEST_SUFFIX + ".tmp"):
            path.with_name(path.name + leftover).unlink(missing_ok=True)
        raise _write_error(f"cannot write {path.name}: {exc}", exc, items) from exc
    return WrittenSnapshot(path, manifest)


def _write_error(message: str, exc: OSError, items: dict[str, list[Item]]) -> SnapshotWriteError:
    if exc.errno in NO_ROOM:
        needed = sum(len(m.payload) for msgs in items.values() for _, m in msgs) + OVERHEAD_BYTES
        return DiskFullError(message, needed)
    return SnapshotWriteError(message)


@dataclass
class RecoveryReport:
    """What :func:`recover` found: complete snapshots (to make sure are queued) and what it did."""

    complete: list[WrittenSnapshot] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)


def _verify(path: Path) -> SnapshotManifest:
    """Read every message (CRCs checked); returns the embedded manifest or raises ContractError."""
    with SnapshotReader(path) as reader:
        counts = {c.topic: 0 for c in reader.manifest.channels}
        for _, msg in reader.messages():
            counts[msg.topic] = counts.get(msg.topic, 0) + 1
        expected = {c.topic: c.count for c in reader.manifest.channels}
        if counts != expected:
            raise SnapshotError(f"{path.name}: message counts {counts} disagree with manifest {expected}")
        return reader.manifest


def _discard(path: Path, why: str, report: RecoveryReport) -> None:
    log.warning("discarding an incomplete snapshot", extra={"file": path.name, "why": why})
    path.unlink(missing_ok=True)
    path.with_name(path.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
    report.discarded.append(path.name)


def _rebuild_sidecar(path: Path, report: RecoveryReport) -> WrittenSnapshot | None:
    try:
        manifest = _verify(path).with_file(sha256_file(path), path.stat().st_size)
    except ContractError as exc:
        _discard(path, str(exc), report)
        return None
    write_sidecar(path, manifest)
    return WrittenSnapshot(path, manifest)


def recover(directory: Path) -> RecoveryReport:
    """Make ``directory`` hold only complete snapshots with sidecars; see the module docstring."""
    report = RecoveryReport()
    if not directory.is_dir():
        return report
    for tmp in directory.glob("*" + MANIFEST_SUFFIX + ".tmp"):
        tmp.unlink(missing_ok=True)
    for active in sorted(directory.glob("*.mcap" + ACTIVE_SUFFIX)):
        final = active.with_name(active.name[: -len(ACTIVE_SUFFIX)])
        try:
            _verify(active)
        except ContractError as exc:
            _discard(active, str(exc), report)
            continue
        os.replace(active, final)
        final.with_name(final.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
        report.recovered.append(final.name)
    for path in sorted(directory.glob("*.mcap")):
        try:
            manifest = read_sidecar(path)
            if manifest.size_bytes != path.stat().st_size:
                raise ContractError(f"sidecar says {manifest.size_bytes} bytes")
            report.complete.append(WrittenSnapshot(path, manifest))
        except (ContractError, OSError):
            snap = _rebuild_sidecar(path, report)
            if snap is not None:
                report.rebuilt.append(path.name)
                report.complete.append(snap)
    return report
