"""A consumer that applies each announcement once over an at-least-once :class:`SegmentFeed`.

The feed may deliver a message again (a relay re-publishing, a consumer dying before its ack).
:class:`SegmentConsumer` keeps the ids it has processed in :class:`ProcessedIds` (in memory,
optionally an fsynced append-only file) and acknowledges without handling any id it has seen.
Order of work per message: handle, record the id, ack; so a crash between handling and recording
re-runs the handler once (handlers must be idempotent, e.g. keyed by segment id), and a crash
between recording and acking is absorbed.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.protocol import SegmentFeed


class ProcessedIds:
    """A set of processed message ids; with ``path``, every id is appended and fsynced there."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._ids: set[str] = set()
        if path is not None and path.exists():
            self._ids.update(line for line in path.read_text().splitlines() if line)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, msg_id: str) -> None:
        if msg_id in self._ids:
            return
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(msg_id + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        self._ids.add(msg_id)


Handler = Callable[[str, Announcement], Awaitable[None]]


class SegmentConsumer:
    """Handles the new announcements of ``feed``, skipping message ids it has processed.

    ``duplicates`` counts deliveries skipped as already processed."""

    def __init__(self, feed: SegmentFeed, processed: ProcessedIds | None = None) -> None:
        self.feed = feed
        self.processed = processed if processed is not None else ProcessedIds()
        self.duplicates = 0

    @property
    def malformed(self) -> int:
        """Messages the feed skipped because they were not announcements."""
        return self.feed.malformed

    async def poll(self, handle: Handler, batch: int = 256, timeout_s: float = 1.0) -> int:
        """Fetch up to ``batch`` deliveries; handle the new ones; return how many were handled."""
        handled = 0
        for d in await self.feed.fetch(batch, timeout_s):
            if d.msg_id in self.processed:
                self.duplicates += 1
            else:
                await handle(d.msg_id, d.announcement)
                self.processed.add(d.msg_id)
                handled += 1
            await self.feed.ack([d])
        return handled

    async def close(self) -> None:
        await self.feed.close()
