"""The metadata DB: records and the :class:`MetadataDB` protocol, the SQL both back-ends share
(the queue's outbox, relay claims and consumers' inbox among it), its migrations, and the
back-ends by name (``sqlite`` embedded, ``postgres`` at fleet scale).

Not imported here (they load an optional client library): :mod:`cloud_ingest.storage.metadata.postgres`.
"""

from cloud_ingest.storage.metadata.protocol import (
    COMPLETE,
    IN_PROGRESS,
    QUARANTINED,
    SEGMENTS_TOPIC,
    DBOptions,
    Effect,
    JoinPlan,
    MetadataDB,
    OperatorRow,
    OutboxRow,
    QuarantineRow,
    SegmentQuery,
    SegmentRow,
    Tx,
    UploadRecord,
    VehicleRow,
)
from cloud_ingest.storage.metadata.queue_tables import QueueTables
from cloud_ingest.storage.metadata.registry import (
    BACKENDS,
    backend_class,
    open_db,
)
from cloud_ingest.storage.metadata.rows import (
    OUTBOX_COLS,
    SEGMENT_COLS,
    UPLOAD_COLS,
    outbox_row,
    segment_row,
    upload_row,
)
from cloud_ingest.storage.metadata.schema import (
    DIALECTS,
    LATEST,
    MIGRATIONS,
    VERSION_TABLE,
    statements,
)
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.metadata.sqlite import SQLiteDB

__all__ = [
    "BACKENDS",
    "COMPLETE",
    "DIALECTS",
    "IN_PROGRESS",
    "LATEST",
    "MIGRATIONS",
    "OUTBOX_COLS",
    "QUARANTINED",
    "SEGMENTS_TOPIC",
    "SEGMENT_COLS",
    "UPLOAD_COLS",
    "VERSION_TABLE",
    "DBOptions",
    "Effect",
    "JoinPlan",
    "MetadataDB",
    "OperatorRow",
    "OutboxRow",
    "QuarantineRow",
    "QueueTables",
    "SQLMetadataDB",
    "SQLiteDB",
    "SegmentQuery",
    "SegmentRow",
    "Tx",
    "UploadRecord",
    "VehicleRow",
    "backend_class",
    "open_db",
    "outbox_row",
    "segment_row",
    "statements",
    "upload_row",
]
