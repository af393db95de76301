"""The recording pipeline: receive → time sync → ring buffer → triggers → windows → snapshots.

:meth:`Recorder.ingest` is the whole per-message path and needs no socket; :meth:`Recorder.poll`
feeds it from the :class:`vehicle.sources.receiver.Receiver`. Snapshots are written on one writer thread
(the window's messages are immutable and shared, not copied), so a long write never stalls
reception; each finished snapshot is queued for upload before it counts as cut.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from prometheus_client import Counter

from shared.errors import ContractError
from shared.messages import SensorMessage
from vehicle.buffer.ring_buffer import RingBuffer
from vehicle.config.tree import VehicleConfig
from vehicle.errors import DiskFullError, VehicleError
from vehicle.metrics import VehicleMetrics
from vehicle.snapshot.writer import SnapshotMeta, WrittenSnapshot, write_snapshot
from vehicle.sources.receiver import Receiver
from vehicle.sources.timesync import TimeSync
from vehicle.triggers.rules import TriggerEngine
from vehicle.triggers.windows import PendingWindow, WindowPlanner
from vehicle.upload.queue import UploadQueue

log = logging.getLogger(__name__)
NS = 1_000_000_000


class Recorder:
    """Owns the buffer, the trigger engine and the snapshot writer thread of one vehicle."""

    def __init__(self, cfg: VehicleConfig, metrics: VehicleMetrics, queue: UploadQueue, *,
                 receiver: Receiver | None = None,
                 on_snapshot: Callable[[WrittenSnapshot], None] | None = None) -> None:
        self.cfg, self.metrics, self.queue, self.receiver = cfg, metrics, queue, receiver
        self.buffer = RingBuffer(round(cfg.buffer.max_age_s * NS), cfg.buffer.max_bytes,
                                 topic_max_bytes=cfg.buffer.topic_max_bytes,
                                 latched_topics=cfg.buffer.latched_topics, on_evict=self._evicted)
        self.timesync = TimeSync(cfg.timesync)
        self.engine = TriggerEngine(cfg.triggers, cfg.topics)
        self.planner = WindowPlanner()
        self.meta = SnapshotMeta(cfg.vehicle_id, cfg.software_version, cfg.model_version,
                                 cfg.calibration_version)
        self._on_snapshot = on_snapshot
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-writer")
        self._inflight: list[Future[WrittenSnapshot | None]] = []
        self._rx: dict[str, tuple[Counter, Counter]] = {}
        self._trigger_topics = frozenset({cfg.topics.vehicle_state, cfg.topics.model_scores})
        self._settle_ns = round(cfg.sources.max_latency_s * NS)
        # Windows already cut, newest last: a message that belongs to one arrived too late for it.
        self._cut: list[tuple[int, int]] = []

    def _evicted(self, topic: str, cause: str) -> None:
        self.metrics.evictions.labels(topic=topic, cause=cause).inc()
        if cause != "age":
            # Evicted before max_age_s to stay within a byte budget: a trigger's pre-window can no
            # longer include it, so it is lost to every snapshot.
            self.metrics.drop("ring", cause)

    def poll(self, timeout_ms: int = 100) -> int:
        """Receive and ingest one batch; returns how many messages were decoded."""
        if self.receiver is None:
            raise VehicleError("this recorder has no receiver")
        batch = self.receiver.receive_accounted(timeout_ms)
        for msg, counted in batch:
            self.ingest(msg, counted)
        self.metrics.buffer_bytes.set(self.buffer.total_bytes)
        self.metrics.buffer_fill.set(self.buffer.total_bytes / self.buffer.max_bytes)
        return len(batch)

    def ingest(self, msg: SensorMessage, counted_before: int = 0) -> None:
        """Run one stamped message through time sync, the buffer and the triggers.

        ``counted_before``: messages of the stream just before ``msg`` that an earlier stage already
        counted as drops (the receiver's socket and decode counts); a time gap they explain is not
        counted again as ``source`` drops.
        """
        topic = msg.topic
        verdict = self.timesync.observe(topic, msg.seq, msg.t_sensor_ns, msg.t_recv_ns)
        if not verdict.accept:
            self.metrics.drop("timesync", "duplicate")
            return
        if verdict.clock_step:
            self.metrics.clock_steps.labels(topic=topic).inc()
            log.warning("sensor clock stepped; time sync restarted", extra={"topic": topic})
        if verdict.reordered:
            self.metrics.reordered.labels(topic=topic).inc()
        if verdict.missing:
            self.metrics.gaps.labels(topic=topic).inc()
            if verdict.missing > counted_before:
                self.metrics.drop("source", "missed_sample", verdict.missing - counted_before)
        if self._cut:
            self._count_if_late(topic, verdict.t_ns)
        if not self.buffer.append(verdict.t_ns, msg):
            self.metrics.drop("buffer", "no_room")
            return
        counters = self._rx.get(topic)
        if counters is None:
            counters = self._rx[topic] = (self.metrics.messages.labels(topic=topic),
                                          self.metrics.bytes_received.labels(topic=topic))
        counters[0].inc()
        counters[1].inc(len(msg.payload))
        if topic in self._trigger_topics:
            self._run_triggers(verdict.t_ns, msg)

    def _run_triggers(self, t_ns: int, msg: SensorMessage) -> None:
        try:
            events = self.engine.observe(t_ns, msg.topic, msg.payload)
        except ContractError as exc:
            self.metrics.drop("trigger", exc.reason)
            return
        for event in events:
            self.metrics.triggers.labels(kind=event.kind.value).inc()
            window = self.planner.add(event)
            log.info("trigger fired", extra={"trigger": event.name, "kind": event.kind.value,
                                             "t_ns": event.t_ns, "window": [window.start_ns, window.end_ns]})
        if msg.topic == self.cfg.topics.vehicle_state:
            # Wait ``max_latency_s`` past the window's end for the slower sensors (see SourcesConfig).
            for window in self.planner.due(t_ns - self._settle_ns):
                self.cut(window)

    def _count_if_late(self, topic: str, t_ns: int) -> None:
        """Count a message that belongs to an already cut window: that snapshot will lack it."""
        horizon = t_ns - round(self.cfg.buffer.max_age_s * NS)
        self._cut = [w for w in self._cut if w[1] >= horizon]
        if any(start <= t_ns <= end for start, end in self._cut):
            self.metrics.drop("snapshot", "late")
            log.debug("message arrived after its window was cut", extra={"topic": topic, "t_ns": t_ns})

    def cut(self, window: PendingWindow) -> Future[WrittenSnapshot | None]:
        """Take the window's messages from the buffer now and write them on the writer thread."""
        self._cut.append((window.start_ns, window.end_ns))
        items = self.buffer.window(window.start_ns, window.end_ns)
        fut = self._writer.submit(self._write, window, items)
        self._inflight = [f for f in self._inflight if not f.done()] + [fut]
        return fut

    def _write(self, window: PendingWindow, items: dict[str, list[tuple[int, SensorMessage]]]
               ) -> WrittenSnapshot | None:
        started = time.perf_counter()
        try:
            snap = self._write_making_room(window, items)
            evicted = self.queue.enqueue(snap)
        except VehicleError as exc:
            self.metrics.snapshots.labels(result="failed").inc()
            log.error("snapshot not written", extra={"error": str(exc), "reason": exc.reason})
            return None
        self.metrics.snapshot_seconds.observe(time.perf_counter() - started)
        self.metrics.snapshots.labels(result="written").inc()
        if evicted:
            self.metrics.queue_evictions.inc(len(evicted))
        log.info("snapshot written", extra={"file": snap.path.name, "bytes": snap.manifest.size_bytes,
                                            "triggers": [t.name for t in window.triggers]})
        if self._on_snapshot is not None:
            self._on_snapshot(snap)
        return snap

    def _write_making_room(self, window: PendingWindow, items: dict[str, list[tuple[int, SensorMessage]]]
                           ) -> WrittenSnapshot:
        """Write; on a full disk evict lower-or-equal priority snapshots and retry once.

        Every full-disk failure counts in ``disk_full{outcome}``; the messages of a snapshot that
        fails twice count as drops at stage ``disk``.
        """
        try:
            return write_snapshot(self.cfg.snapshots_dir, window, items, self.meta)
        except DiskFullError as exc:
            self.metrics.disk_full.labels(outcome="retried").inc()
            evicted = self.queue.make_room(exc.needed_bytes, window.priority)
            self.metrics.queue_evictions.inc(len(evicted))
            log.warning("disk full: evicted queued snapshots, retrying once",
                        extra={"needed_bytes": exc.needed_bytes, "evicted": [e.file_name for e in evicted]})
        try:
            return write_snapshot(self.cfg.snapshots_dir, window, items, self.meta)
        except DiskFullError as exc:
            self.metrics.disk_full.labels(outcome="dropped").inc()
            self.metrics.drop("disk", exc.reason, sum(len(v) for v in items.values()))
            raise

    def flush(self, timeout_s: float | None = None) -> list[WrittenSnapshot]:
        """Cut every pending window with what is buffered and wait for all writes to finish."""
        for window in self.planner.drain():
            self.cut(window)
        done = [f.result(timeout=timeout_s) for f in self._inflight]
        self._inflight = []
        return [s for s in done if s is not None]

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        if self.receiver is not None:
            self.receiver.close()
