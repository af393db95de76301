"""The service process: the recorder thread and the uploader task, under systemd's eye.

``VehicleService(cfg, record=..., upload=...).run(stop)`` recovers the snapshot directory, opens
the queue, connects the SUB socket, then sends ``READY=1``. The main loop pings the watchdog
only while the recorder thread is alive, so a wedged recorder gets restarted. When ``stop`` is
set (SIGTERM, installed by the CLI): ``STOPPING=1``, the recorder stops receiving, cuts every
pending window from what is buffered, waits for the writes, and the uploader stops at a chunk
boundary; every state change is already committed in the queue.

With ``[inference]`` configured the recorder also connects to the inference process's publish
endpoint, so ``model/scores`` is buffered, recorded and seen by the score triggers. Each process
serves its own ``/metrics`` port (``[metrics] port`` or ``uploader_port``), bound before anything
else starts: a port already taken raises :class:`vehicle.errors.MetricsPortError`, which the CLI
reports in one line with exit code 1 (a runtime conflict that a restart may clear, not a bad
configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import aiohttp

from shared.sdnotify import Notifier
from vehicle.config.tree import VehicleConfig
from vehicle.errors import VehicleError
from vehicle.metrics import VehicleMetrics
from vehicle.recorder import Recorder
from vehicle.snapshot.writer import WrittenSnapshot, recover
from vehicle.sources.receiver import Receiver
from vehicle.upload.queue import UploadQueue
from vehicle.upload.uploader import TusUploader

log = logging.getLogger(__name__)


class VehicleService:
    """Recorder and/or uploader of one vehicle in one process."""

    def __init__(self, cfg: VehicleConfig, *, record: bool = True, upload: bool = True,
                 notifier: Notifier | None = None, metrics: VehicleMetrics | None = None) -> None:
        if upload and not cfg.uploader.token:
            raise VehicleError("[uploader] token is required for uploads")
        self.cfg, self.record, self.upload = cfg, record, upload
        self.notifier = notifier or Notifier()
        self.metrics = metrics or VehicleMetrics()
        self.recorder: Recorder | None = None
        self._rx_stop = threading.Event()
        self._rx_error: BaseException | None = None

    def _open(self, wake: asyncio.Event, loop: asyncio.AbstractEventLoop) -> UploadQueue:
        cfg = self.cfg
        queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
        stale = queue.remove_stale_files()
        if stale:
            log.info("removed files of delivered or evicted snapshots", extra={"files": stale})
        if self.record:
            report = recover(cfg.snapshots_dir)
            for snap in report.complete:
                queue.enqueue(snap)
            log.info("snapshot directory recovered", extra={
                "complete": len(report.complete), "recovered": report.recovered,
                "rebuilt": report.rebuilt, "discarded": report.discarded})

            def woke(_: WrittenSnapshot) -> None:
                loop.call_soon_threadsafe(wake.set)

            receiver = Receiver(cfg.recorder_endpoints, self.metrics, rcvhwm=cfg.sources.rcvhwm,
                                max_payload_bytes=cfg.sources.max_payload_bytes)
            self.recorder = Recorder(cfg, self.metrics, queue, receiver=receiver, on_snapshot=woke)
        return queue

    def _receive_loop(self) -> None:
        assert self.recorder is not None
        try:
            while not self._rx_stop.is_set():
                self.recorder.poll(100)
        except BaseException as exc:  # reported by the main loop, which exits non-zero
            self._rx_error = exc
            log.exception("recorder thread died")

    async def run(self, stop: asyncio.Event) -> int:
        """Serve until ``stop`` is set; returns the process exit code."""
        port, key = ((self.cfg.metrics.port, "[metrics] port") if self.record
                     else (self.cfg.metrics.uploader_port, "[metrics] uploader_port"))
        if port:
            self.metrics.serve(self.cfg.metrics.host, port, key=key)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        queue = self._open(wake, loop)
        rx_thread: threading.Thread | None = None
        if self.recorder is not None:
            rx_thread = threading.Thread(target=self._receive_loop, name="recorder", daemon=True)
            rx_thread.start()
        session: aiohttp.ClientSession | None = None
        up_stop = asyncio.Event()
        up_task: asyncio.Task[None] | None = None
        if self.upload:
            timeout = aiohttp.ClientTimeout(total=self.cfg.uploader.request_timeout_s)
            session = aiohttp.ClientSession(timeout=timeout)
            uploader = TusUploader(session, self.cfg.uploader, self.cfg.vehicle_id, queue, self.metrics)
            up_task = asyncio.create_task(uploader.run(up_stop, wake))
        self.notifier.ready(f"recording={self.record} uploading={self.upload}")
        log.info("vehicle service ready", extra={"vehicle_id": self.cfg.vehicle_id, "metrics_port": port,
                                                 "endpoints": list(self.cfg.recorder_endpoints)})
        code = await self._main_loop(stop, queue, rx_thread, up_task)
        self.notifier.stopping()
        await self._shutdown(rx_thread, up_stop, up_task, session, queue)
        return code

    async def _main_loop(self, stop: asyncio.Event, queue: UploadQueue, rx_thread: threading.Thread | None,
                         up_task: asyncio.Task[None] | None) -> int:
        interval = self.notifier.watchdog_interval_s() or 1.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(interval, 1.0))
            if rx_thread is not None and not rx_thread.is_alive():
                log.error("recorder stopped unexpectedly", extra={"error": str(self._rx_error)})
                return 1
            if up_task is not None and up_task.done():
                log.error("uploader stopped unexpectedly", extra={"error": repr(up_task.exception())})
                return 1
            self.notifier.watchdog()
            for state, n in queue.depth().items():
                self.metrics.queue_depth.labels(state=state).set(n)
        return 0

    async def _shutdown(self, rx_thread: threading.Thread | None, up_stop: asyncio.Event,
                        up_task: asyncio.Task[None] | None, session: aiohttp.ClientSession | None,
                        queue: UploadQueue) -> None:
        started = time.monotonic()
        self._rx_stop.set()
        if rx_thread is not None:
            await asyncio.to_thread(rx_thread.join, 5.0)
        if self.recorder is not None:
            flushed = await asyncio.to_thread(self.recorder.flush, 60.0)
            self.recorder.close()
            log.info("flushed pending snapshots", extra={"count": len(flushed)})
        if up_task is not None:
            up_stop.set()
            try:
                await asyncio.wait_for(up_task, timeout=2.0)
            except TimeoutError:
                log.info("upload interrupted at shutdown; it resumes on restart")
        if session is not None:
            await session.close()
        queue.close()
        log.info("vehicle service stopped", extra={"drain_s": round(time.monotonic() - started, 3)})
