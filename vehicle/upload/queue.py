"""The persistent upload queue: one SQLite row per snapshot, surviving crashes and restarts.

Order: priority descending, then oldest first. States: ``pending`` → ``uploading`` (the tus upload
URL and confirmed offset are stored, so a restart resumes) → ``done`` (file deleted) or ``failed``
(with a reason; not retried). A disk budget bounds the bytes of queued files: when it is exceeded,
permanently failed files go first, then pending ones, lowest priority and oldest first; each
eviction is recorded as ``failed`` with reason ``evicted: disk budget``. The database runs in WAL
mode with ``synchronous=FULL``, so a committed state change survives power loss; it can be shared
by a recorder and an uploader process.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.snapshot import MANIFEST_SUFFIX
from vehicle.errors import QueueError
from vehicle.snapshot.writer import WrittenSnapshot

STATES = ("pending", "uploading", "done", "failed")
EVICTED = "evicted: disk budget"
EVICTED_DISK_FULL = "evicted: disk full"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'done', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    upload_url TEXT NOT NULL DEFAULT '',
    offset_bytes INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at_ns INTEGER NOT NULL DEFAULT 0,
    segments TEXT NOT NULL DEFAULT '',
    has_file INTEGER NOT NULL DEFAULT 1,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_order ON snapshots (state, priority DESC, created_ns);
"""
_COLS = ("snapshot_id, file_name, size_bytes, sha256, priority, created_ns, state, reason, upload_url, "
         "offset_bytes, attempts, retry_at_ns, segments")


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queued snapshot as stored; ``offset_bytes`` is the last offset the server confirmed."""

    snapshot_id: str
    file_name: str
    size_bytes: int
    sha256: str
    priority: int
    created_ns: int
    state: str
    reason: str
    upload_url: str
    offset_bytes: int
    attempts: int
    retry_at_ns: int
    segments: str


class UploadQueue:
    """Thread-safe handle on ``queue.sqlite3``; files are resolved in ``snapshots_dir``."""

    def __init__(self, db_path: Path, snapshots_dir: Path, max_bytes: int) -> None:
        self.snapshots_dir = snapshots_dir
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None,
                                       timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise QueueError(f"cannot open the upload queue {db_path.name}: {exc}") from exc

    def _exec(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise QueueError(f"upload queue: {exc}") from exc

    def path(self, entry: QueueEntry) -> Path:
        return self.snapshots_dir / entry.file_name

    def enqueue(self, snap: WrittenSnapshot) -> list[QueueEntry]:
        """Queue a finished snapshot (idempotent); returns the entries the disk budget evicted."""
        m = snap.manifest
        self._exec(
            "INSERT OR IGNORE INTO snapshots (snapshot_id, file_name, size_bytes, sha256, priority, "
            "created_ns, state, updated_ns) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (m.snapshot_id, snap.path.name, m.size_bytes, m.sha256, snap.priority, m.created_ns,
             time.time_ns()),
        )
        return self.enforce_budget()

    def get(self, snapshot_id: str) -> QueueEntry | None:
        rows = self._exec(f"SELECT {_COLS} FROM snapshots WHERE snapshot_id = ?", (snapshot_id,))
        return QueueEntry(*rows[0]) if rows else None  # type: ignore[arg-type]

    def entries(self, states: tuple[str, ...] = STATES) -> list[QueueEntry]:
        """Entries in ``states``, in upload order."""
        marks = ",".join("?" * len(states))
        rows = self._exec(f"SELECT {_COLS} FROM snapshots WHERE state IN ({marks}) "
                          "ORDER BY priority DESC, created_ns, snapshot_id", states)
        return [QueueEntry(*r) for r in rows]  # type: ignore[arg-type]

    def next_ready(self, now_ns: int) -> QueueEntry | None:
        """The next entry to upload whose backoff has passed, or ``None``."""
        rows = self._exec(f"SELECT {_COLS} FROM snapshots WHERE state IN ('pending', 'uploading') "
                          "AND retry_at_ns <= ? ORDER BY priority DESC, created_ns, snapshot_id LIMIT 1",
                          (now_ns,))
        return QueueEntry(*rows[0]) if rows else None  # type: ignore[arg-type]

    def depth(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self._exec("SELECT state, COUNT(*) FROM snapshots GROUP BY state"):
            assert isinstance(n, int)
            counts[str(state)] = n
        return counts

    def _update(self, snapshot_id: str, sets: str, args: tuple[object, ...]) -> None:
        self._exec(f"UPDATE snapshots SET {sets}, updated_ns = ? WHERE snapshot_id = ?",
                   (*args, time.time_ns(), snapshot_id))

    def start(self, snapshot_id: str, upload_url: str) -> None:
        """Record the tus upload URL the server created (offset 0)."""
        self._update(snapshot_id, "state = 'uploading', upload_url = ?, offset_bytes = 0", (upload_url,))

    def set_offset(self, snapshot_id: str, offset_bytes: int) -> None:
        self._update(snapshot_id, "offset_bytes = ?", (offset_bytes,))

    def reset_upload(self, snapshot_id: str, reason: str) -> None:
        """Forget the upload URL (the next attempt creates a new upload)."""
        self._update(snapshot_id, "state = 'pending', upload_url = '', offset_bytes = 0, reason = ?",
                     (reason,))

    def defer(self, snapshot_id: str, retry_at_ns: int, reason: str) -> None:
        """Count a failed attempt and hold the entry back until ``retry_at_ns``."""
        self._update(snapshot_id, "attempts = attempts + 1, retry_at_ns = ?, reason = ?",
                     (retry_at_ns, reason))

    def done(self, snapshot_id: str, segments: str = "") -> None:
        """Mark delivered, then delete the local file and its sidecar."""
        entry = self.get(snapshot_id)
        self._update(snapshot_id, "state = 'done', reason = '', segments = ?, has_file = 0", (segments,))
        if entry is not None:
            self._delete_files(entry)

    def fail(self, snapshot_id: str, reason: str) -> None:
        """Record a permanent failure; the file is kept for inspection until the budget needs it."""
        self._update(snapshot_id, "state = 'failed', reason = ?", (reason,))

    def _delete_files(self, entry: QueueEntry) -> None:
        path = self.path(entry)
        path.unlink(missing_ok=True)
        path.with_name(path.name + MANIFEST_SUFFIX).unlink(missing_ok=True)

    def queued_bytes(self) -> int:
        rows = self._exec("SELECT COALESCE(SUM(size_bytes), 0) FROM snapshots WHERE has_file = 1")
        total = rows[0][0]
        assert isinstance(total, int)
        return total

    def enforce_budget(self) -> list[QueueEntry]:
        """Evict until the queued files fit ``max_bytes``; never the entry being uploaded."""
        evicted: list[QueueEntry] = []
        total = self.queued_bytes()
        if total <= self.max_bytes:
            return evicted
        rows = self._exec(
            f"SELECT {_COLS} FROM snapshots WHERE has_file = 1 AND state IN ('failed', 'pending') "
            "ORDER BY state = 'pending', priority, created_ns, snapshot_id")
        for row in rows:
            if total <= self.max_bytes:
                break
            entry = QueueEntry(*row)  # type: ignore[arg-type]
            self._update(entry.snapshot_id, "state = 'failed', reason = ?, has_file = 0", (EVICTED,))
            self._delete_files(entry)
            total -= entry.size_bytes
            evicted.append(entry)
        return evicted

    def remove_stale_files(self) -> list[str]:
        """Delete files of entries already marked delivered or evicted; returns their names.

        State changes commit before the file goes, so a power cut in between leaves such a file;
        run at startup, this makes the disk agree with the queue again.
        """
        removed: list[str] = []
        for (name,) in self._exec("SELECT file_name FROM snapshots WHERE has_file = 0"):
            path = self.snapshots_dir / str(name)
            if path.exists() or path.with_name(path.name + MANIFEST_SUFFIX).exists():
                path.unlink(missing_ok=True)
                path.with_name(path.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def free_bytes(self) -> int:
        """Free bytes on the filesystem holding the snapshots."""
        return shutil.disk_usage(self.snapshots_dir).free

    def make_room(self, needed_bytes: int, max_priority: int) -> list[QueueEntry]:
        """Evict queued files until ``needed_bytes`` are free on the snapshots' filesystem.

        Same order as the budget (failed first, then pending; lowest priority, oldest first), but
        never an entry of higher priority than ``max_priority`` (the snapshot that needs the room)
        nor the one being uploaded. When evicting all of those could not free enough, nothing is
        evicted. Returns what was evicted.
        """
        evicted: list[QueueEntry] = []
        rows = self._exec(
            f"SELECT {_COLS} FROM snapshots WHERE has_file = 1 AND state IN ('failed', 'pending') "
            "AND priority <= ? ORDER BY state = 'pending', priority, created_ns, snapshot_id", (max_priority,))
        reclaimable = sum(int(r[2]) for r in rows)  # type: ignore[call-overload]
        if self.free_bytes() + reclaimable < needed_bytes:
            return evicted
        for row in rows:
            if self.free_bytes() >= needed_bytes:
                break
            entry = QueueEntry(*row)  # type: ignore[arg-type]
            self._update(entry.snapshot_id, "state = 'failed', reason = ?, has_file = 0", (EVICTED_DISK_FULL,))
            self._delete_files(entry)
            evicted.append(entry)
        return evicted

    def close(self) -> None:
        with self._lock:
            self._db.close()
