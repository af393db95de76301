"""A real consumer process for the kill tests: a :class:`SegmentConsumer` on a JetStream durable,
applying each announcement as one more count in the ``effects`` table of its database.

``python -m tests.cloud_ingest.queue.consumer_process <settings.json>``: the settings name the
database (``backend``, ``sqlite_path``, ``dsn``, ``schema``), NATS (``nats_url``, ``stream``,
``subject_prefix``, ``durable``, ``ack_wait_s``), the consumer ``name``, ``batch``, the handler's
``delay_s`` (so a batch takes long enough to be killed in) and ``stats_path``, rewritten after every
poll with ``{"applied": .., "duplicates": ..}``. SIGTERM stops it after the current poll.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cloud_ingest.config import RelayConfig
from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.consumer import SegmentConsumer
from cloud_ingest.queue.jetstream import JetStreamFeed
from cloud_ingest.queue.relay import connect
from cloud_ingest.storage.metadata.protocol import Effect
from cloud_ingest.storage.metadata.registry import open_db
from tests.cloud_ingest.queue.helpers import count_effect


def _write_stats(path: Path, consumer: SegmentConsumer) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"applied": consumer.applied, "duplicates": consumer.duplicates}))
    os.replace(tmp, path)


async def main(settings: dict[str, Any]) -> int:
    db = open_db(settings["backend"], sqlite_path=settings["sqlite_path"], dsn=settings["dsn"],
                 schema=settings["schema"])
    cfg = RelayConfig(nats_url=settings["nats_url"], stream=settings["stream"],
                      subject_prefix=settings["subject_prefix"])
    nc = await connect(cfg)
    feed = JetStreamFeed(nc.jetstream(), cfg, durable=settings["durable"], ack_wait_s=settings["ack_wait_s"])
    consumer = SegmentConsumer(feed, db, settings["name"])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stats = Path(settings["stats_path"])

    async def handle(ann: Announcement) -> Effect:
        await asyncio.sleep(settings["delay_s"])  # the work before the transaction
        return count_effect(ann.segment_id)

    while not stop.is_set():
        await consumer.poll(handle, batch=settings["batch"], timeout_s=0.5)
        _write_stats(stats, consumer)
    await consumer.close()
    await nc.close()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()))))
