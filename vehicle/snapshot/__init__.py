"""Cutting snapshots: a pending window's buffered messages into one crash-safe MCAP file.
"""

from vehicle.snapshot.writer import (
    NO_ROOM,
    OVERHEAD_BYTES,
    RecoveryReport,
    SnapshotMeta,
    WrittenSnapshot,
    recover,
    snapshot_filename,
    write_snapshot,
)

__all__ = [
    "NO_ROOM",
    "OVERHEAD_BYTES",
    "RecoveryReport",
    "SnapshotMeta",
    "WrittenSnapshot",
    "recover",
    "snapshot_filename",
    "write_snapshot",
]
