"""The metadata DB contract: records, and the :class:`MetadataDB` protocol every back-end meets.

Back-ends: :class:`cloud_ingest.storage.metadata.sqlite.SQLiteDB` (embedded default, WAL) and
:class:`cloud_ingest.storage.metadata.postgres.PostgresDB` (fleet scale). One test suite runs against both.
Every method is one transaction; methods are blocking and thread-safe (the daemon calls them
from worker threads so the event loop stays free). Besides the ingest's own tables it holds the
queue's: the outbox, the relay's claims of it, and each consumer's inbox of applied message ids
(:meth:`MetadataDB.apply_once`, the way a downstream consumer commits its effect once).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Upload states. ``in_progress`` → ``complete`` | ``quarantined``; checksum failures delete the row.
IN_PROGRESS = "in_progress"
COMPLETE = "complete"
QUARANTINED = "quarantined"

#: The outbox topic segment announcements are written to (keyed by vehicle id).
SEGMENTS_TOPIC = "segments.raw"


@dataclass(frozen=True, slots=True)
class DBOptions:
    """How to reach a back-end: ``sqlite_path`` for SQLite; ``dsn``, ``schema`` and ``pool_size`` for
    PostgreSQL. Each back-end reads the fields it needs."""

    sqlite_path: str = ""
    dsn: str = ""
    schema: str = "public"
    pool_size: int = 4


@dataclass(frozen=True, slots=True)
class VehicleRow:
    """A registered vehicle: salted hash of its token (see :mod:`cloud_ingest.auth`)."""

    vehicle_id: str
    salt: bytes
    token_hash: bytes
    created_ns: int
    rotated_ns: int


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One tus upload. ``lock_owner``/``lock_until_ns`` is the write lease (see ``claim_upload``)."""

    upload_id: str
    vehicle_id: str
    length_bytes: int
    offset_bytes: int
    sha256: str
    snapshot_id: str
    filename: str
    status: str
    created_ns: int
    expires_ns: int
    bytes_received: int = 0
    segment_ids: tuple[str, ...] = ()
    lock_owner: str = ""
    lock_until_ns: int = 0


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """A stored segment: queryable columns plus the encoded :class:`shared.segment.Segment`.

    ``version`` is the version of the record: 1 when the segment is ingested. Records are
    immutable (a join makes a *new* segment that supersedes the old ones), so nothing writes
    another version today; a re-derived record would be a new version with its own announcement."""

    segment_id: str
    vehicle_id: str
    start_ns: int
    end_ns: int
    snapshot_id: str
    snapshot_sha256: str
    upload_id: str
    raw_key: str
    record: bytes
    created_ns: int
    labels: tuple[str, ...] = ()
    superseded_by: str = ""
    version: int = 1


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One announcement; ``offset`` increases in commit order, consumers read by offset.

    ``version`` is the announced segment's record version (:attr:`SegmentRow.version`); with
    ``segment_id`` it makes the message id, which, unlike ``offset``, is the same in every database.
    :meth:`MetadataDB.commit_ingest` assigns ``offset``, ``created_ns`` and ``version`` itself."""

    offset: int
    topic: str
    key: str
    segment_id: str
    payload: bytes
    created_ns: int
    version: int = 1


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """What a join planner decided: new (joined) segments with their announcements, and which
    existing segment ids they supersede (``old id -> new id``)."""

    segments: tuple[SegmentRow, ...] = ()
    outbox: tuple[OutboxRow, ...] = ()
    supersede: dict[str, str] = field(default_factory=dict)


#: Called inside the ingest transaction with the vehicle's live neighbouring segments.
JoinPlanner = Callable[[list[SegmentRow]], JoinPlan]


class Tx(abc.ABC):
    """One open transaction: ``run`` executes SQL with ``?`` placeholders."""

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute; return all rows (empty for statements without a result)."""

    @abc.abstractmethod
    def changed(self) -> int:
        """Rows changed by the last statement."""


#: A consumer's effect of one message: its writes, run inside the transaction of the inbox row.
Effect = Callable[[Tx], None]


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    """Filters of the read API. Times are ns; a segment matches when it overlaps
    ``[since_ns, until_ns)``. ``cursor`` continues a previous page (see ``next_cursor``)."""

    vehicle_id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    trigger: str | None = None
    tag: str | None = None
    include_superseded: bool = False
    limit: int = 100
    cursor: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class OperatorRow:
    """A human or service allowed to use the read API (salted token hash, as for vehicles)."""

    operator_id: str
    salt: bytes
    token_hash: bytes
    created_ns: int


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A snapshot that failed integrity checks, kept at ``object_path`` for inspection."""

    upload_id: str
    vehicle_id: str
    reason: str
    detail: str
    object_path: str
    created_ns: int


class MetadataDB(Protocol):
    """What the daemon needs from its metadata database."""

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in force."""
        ...

    def close(self) -> None: ...

    # vehicles
    def add_vehicle(self, row: VehicleRow) -> None:
        """Register a vehicle; raises :class:`cloud_ingest.errors.VehicleExists`."""
        ...

    def set_vehicle_token(self, vehicle_id: str, salt: bytes, token_hash: bytes, now_ns: int) -> bool:
        """Replace a vehicle's token hash; ``False`` when the vehicle is unknown."""
        ...

    def get_vehicle(self, vehicle_id: str) -> VehicleRow | None: ...

    def list_vehicles(self) -> list[VehicleRow]: ...

    # uploads
    def create_upload(self, rec: UploadRecord) -> None: ...

    def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    def find_complete_upload(self, vehicle_id: str, sha256: str) -> UploadRecord | None:
        """The completed upload of this vehicle with this content hash, if any (dedup)."""
        ...

    def claim_upload(self, upload_id: str, owner: str, now_ns: int, lease_ns: int) -> UploadRecord:
        """Take the write lease of an in-progress upload under a per-upload lock.

        Raises :class:`UploadNotFound` or :class:`UploadLocked` (another owner's lease is live).
        """
        ...

    def advance_upload(self, upload_id: str, owner: str, offset_bytes: int, added_bytes: int,
                       expires_ns: int, release: bool) -> UploadRecord:
        """Record new bytes written by the lease ``owner``; optionally release the lease."""
        ...

    def release_upload(self, upload_id: str, owner: str) -> None: ...

    def delete_upload(self, upload_id: str) -> None: ...

    def expired_uploads(self, now_ns: int) -> list[UploadRecord]:
        """In-progress uploads whose ``expires_ns`` has passed and whose lease is not live."""
        ...

    # ingest
    def commit_ingest(self, upload_id: str, segments: list[SegmentRow], outbox: list[OutboxRow],
                      now_ns: int, planner: JoinPlanner | None = None, join_gap_ns: int = 0) -> list[str]:
        """One transaction: insert the segments that are new (and an outbox row for each new one,
        carrying its segment's ``version``), mark the upload complete. Returns the ids of the
        segments that were newly inserted.

        With ``planner``, when a segment was new, the vehicle's writers are serialised, its live
        segments within ``join_gap_ns`` of the new ones are handed to ``planner`` and its
        :class:`JoinPlan` is applied in the same transaction (a leaf superseded at once is not
        announced on its own)."""
        ...

    def quarantine(self, row: QuarantineRow) -> None:
        """One transaction: the quarantine row, and the upload marked ``quarantined``."""
        ...

    def superseded_segments(self, segment_id: str) -> list[SegmentRow]:
        """The segments ``segment_id`` replaced (``superseded_by`` it), oldest ``start_ns`` first."""
        ...

    def mark_processed(self, segment_ids: list[str], now_ns: int) -> None:
        """Record that these segments' processed outputs are complete."""
        ...

    def unprocessed_segments(self, created_before_ns: int, limit: int) -> list[SegmentRow]:
        """Segments committed before ``created_before_ns`` whose processed outputs are not marked."""
        ...

    def stalled_uploads(self, limit: int) -> list[UploadRecord]:
        """Uploads in progress that hold all their bytes (``offset == length``): a daemon died
        between the last byte and the ingest commit."""
        ...

    def get_quarantine(self, upload_id: str) -> QuarantineRow | None: ...

    # read API
    def list_segments(self, vehicle_id: str | None, limit: int, after_ns: int | None) -> list[SegmentRow]:
        """Newest first (by ``start_ns``); ``after_ns`` keeps only segments starting after it."""
        ...

    def get_segment(self, segment_id: str) -> SegmentRow | None: ...

    def query_segments(self, q: SegmentQuery) -> tuple[list[SegmentRow], tuple[int, str] | None]:
        """One page, newest ``start_ns`` first, and the cursor of the next page (``None``: last)."""
        ...

    def segment_ids_for_sha(self, vehicle_id: str, sha256: str) -> list[str]: ...

    # outbox
    def read_outbox(self, after_offset: int, limit: int) -> list[OutboxRow]: ...

    def get_consumer_offset(self, consumer: str) -> int: ...

    def set_consumer_offset(self, consumer: str, offset: int) -> None: ...

    # relay
    def claim_outbox(self, owner: str, limit: int, now_ns: int, lease_ns: int) -> list[OutboxRow]:
        """Lease up to ``limit`` unpublished rows (offset order) to ``owner`` until
        ``now_ns + lease_ns``, in one short transaction, and return them. Rows under another live
        lease are skipped (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so relays share the work; SQLite:
        its single write lock), and a lease that ran out can be claimed again (its relay died)."""
        ...

    def mark_published(self, owner: str, offsets: Sequence[int], now_ns: int, release: Sequence[int] = ()) -> int:
        """Mark rows ``offsets`` published (their PubAck came) and give back the rows ``release``
        (claimed by ``owner``, not acknowledged) for the next claim; return how many were newly marked."""
        ...

    # consumers' inbox
    def applied(self, consumer: str, msg_ids: Sequence[str]) -> set[str]:
        """The ids among ``msg_ids`` whose effect ``consumer`` has applied (committed)."""
        ...

    def apply_once(self, consumer: str, msg_id: str, effect: Effect, now_ns: int | None = None) -> bool:
        """In one transaction: record ``msg_id`` in ``consumer``'s inbox and run ``effect`` on it;
        ``False`` (and ``effect`` not run) when the inbox already holds it. Either both commit or
        neither: an effect that raises rolls its inbox row back, and the error propagates."""
        ...

    # operators (read API)
    def add_operator(self, row: OperatorRow) -> None:
        """Register an operator; raises :class:`cloud_ingest.errors.VehicleExists` if taken."""
        ...

    def get_operator(self, operator_id: str) -> OperatorRow | None: ...
