"""The segment queue: announcements written to the outbox with each segment, the relay that
publishes them to NATS JetStream, the feeds consumers read them from (the outbox by offset
embedded, JetStream at scale, one :class:`SegmentFeed` protocol chosen by name), and the consumer
that applies each announcement's effect once through an inbox in its own database. Delivery is
at-least-once; messages are named ``<segment_id>:<version>`` (:func:`message_id`).

Not imported here (they load an optional client library): :mod:`cloud_ingest.queue.jetstream`,
:mod:`cloud_ingest.queue.relay`.
"""

from cloud_ingest.queue.announce import (
    INLINE_RECORD_MAX,
    MAX_BYTES,
    SCHEMA,
    VERSIONS,
    Announcement,
    announce,
    message_id,
    subject,
)
from cloud_ingest.queue.consumer import Handler, Inbox, SegmentConsumer
from cloud_ingest.queue.outbox import OutboxFeed, outbox_msg_id
from cloud_ingest.queue.protocol import Delivery, SegmentFeed
from cloud_ingest.queue.registry import BACKENDS, open_feed

__all__ = [
    "BACKENDS",
    "INLINE_RECORD_MAX",
    "MAX_BYTES",
    "SCHEMA",
    "VERSIONS",
    "Announcement",
    "Delivery",
    "Handler",
    "Inbox",
    "OutboxFeed",
    "SegmentConsumer",
    "SegmentFeed",
    "announce",
    "message_id",
    "open_feed",
    "outbox_msg_id",
    "subject",
]
