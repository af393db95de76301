"""Publishes a sensor rig over ZeroMQ at real rates, as the vehicle's sensor drivers would.

The publisher binds an XPUB socket, waits (bounded) until a subscriber has subscribed, then
samples every sensor on a monotonic schedule: the ``k``-th sample of a sensor at ``rate_hz`` is
due ``k / rate_hz`` seconds after the start, computed from ``k`` so no drift accumulates. A sample
taken after its due time is still taken (never skipped) and counted as late. ``t_sensor_ns`` is
``time.time_ns()`` at capture. Slow sensors (the camera's render + encode) run on a worker
thread: their capture time is taken on schedule and the payload is sent when it is ready, like
a real camera whose encoder adds latency. Only the main thread touches the socket.
"""

from __future__ import annotations

import heapq
import json
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import zmq

from shared.messages import SensorMessage
from simulator_harness.errors import NoSubscriber, PublishError, SimConfigError
from simulator_harness.sensors.base import Capture, Sensor
from simulator_harness.sensors.rig import frame_count

#: Longest the main loop sleeps before it looks at the stop flag again (s).
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """Where and how long to publish. ``wait_subscriber_s`` of 0 publishes without waiting;
    captures more than ``late_threshold_s`` behind schedule count as late."""

    endpoint: str
    duration_s: float
    log_path: Path | None = None
    wait_subscriber_s: float = 10.0
    sndhwm: int = 1_000_000
    linger_s: float = 10.0
    late_threshold_s: float = 0.005

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise SimConfigError(f"duration_s must be > 0, got {self.duration_s}")
        if self.wait_subscriber_s < 0 or self.sndhwm < 0 or self.linger_s < 0:
            raise SimConfigError("wait_subscriber_s, sndhwm and linger_s must be >= 0")


@dataclass(slots=True)
class TopicStats:
    """Per-topic counters: messages, payload bytes, keyframes, late captures, the worst
    lateness of a capture against its schedule (s) and the worst capture-to-send latency (s)."""

    messages: int = 0
    bytes: int = 0
    keyframes: int = 0
    late: int = 0
    max_lateness_s: float = 0.0
    max_latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PublishSummary:
    """What a run published, and what it cost (wall and CPU seconds of this process)."""

    topics: dict[str, TopicStats]
    wall_s: float
    cpu_s: float
    stopped_early: bool
    endpoint: str = ""

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.topics.values())

    @property
    def max_lateness_s(self) -> float:
        return max((t.max_lateness_s for t in self.topics.values()), default=0.0)

    def format(self) -> str:
        """A plain-text table for the terminal."""
        lines = [f"{'topic':<16}{'messages':>9}{'bytes':>12}{'keyframes':>10}{'late':>6}"
                 f"{'max late ms':>12}{'max latency ms':>15}"]
        for topic, t in self.topics.items():
            lines.append(f"{topic:<16}{t.messages:>9}{t.bytes:>12}{t.keyframes:>10}{t.late:>6}"
                         f"{t.max_lateness_s * 1e3:>12.2f}{t.max_latency_s * 1e3:>15.2f}")
        cpu_pct = 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0
        lines.append(f"{self.messages} messages in {self.wall_s:.2f} s on {self.endpoint}; CPU "
                     f"{self.cpu_s:.2f} s ({cpu_pct:.0f}% of one core)"
                     + ("; stopped early" if self.stopped_early else ""))
        return "\n".join(lines)


@dataclass(slots=True)
class _Done:
    sensor: int
    t_sensor_ns: int
    t_capture_mono: float
    captures: list[Capture] = field(default_factory=list)
    error: BaseException | None = None


class _Worker:
    """Runs one slow sensor's captures in order on its own thread."""

    def __init__(self, index: int, sensor: Sensor, done: queue.Queue[_Done], wake: threading.Event) -> None:
        self.index, self.sensor, self._done, self._wake = index, sensor, done, wake
        self._jobs: queue.Queue[tuple[int, int, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"sensor:{sensor.spec.topic}", daemon=True)
        self._thread.start()

    def submit(self, k: int, t_sensor_ns: int, t_mono: float) -> None:
        self._jobs.put((k, t_sensor_ns, t_mono))

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            k, t_ns, t_mono = job
            try:
                self._done.put(_Done(self.index, t_ns, t_mono, self.sensor.capture(k)))
            except Exception as exc:  # handed to the main thread, which re-raises it
                self._done.put(_Done(self.index, t_ns, t_mono, error=exc))
                return
            finally:
                self._wake.set()

    def finish(self, timeout_s: float) -> None:
        self._jobs.put(None)
        self._thread.join(timeout_s)


class Publisher:
    """Binds ``config.endpoint`` on construction; :meth:`run` publishes the drive once."""

    def __init__(self, sensors: Sequence[Sensor], config: PublishConfig,
                 context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        if not sensors:
            raise PublishError("no sensors to publish")
        self.sensors, self.config = list(sensors), config
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, config.sndhwm)
        self._sock.setsockopt(zmq.LINGER, int(config.linger_s * 1000))
        try:
            self._sock.bind(config.endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise PublishError(f"cannot bind {config.endpoint}: {exc}") from exc
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = False
        self._wake = threading.Event()
        self._done: queue.Queue[_Done] = queue.Queue()
        self._seq = [0] * len(self.sensors)
        self._stats = {s.spec.topic: TopicStats() for s in self.sensors}
        self._log: IO[str] | None = None

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop soon. Safe from a signal handler: it only sets a flag."""
        self._stop = True

    def wait_for_subscriber(self) -> bool:
        """Block until a subscription arrives; ``False`` if a stop was requested meanwhile.

        Raises :class:`NoSubscriber` after ``config.wait_subscriber_s`` without one.
        """
        wait_s = self.config.wait_subscriber_s
        if wait_s <= 0:
            return True
        deadline = time.monotonic() + wait_s
        while not self._stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoSubscriber(f"no subscriber on {self.endpoint} within {wait_s:g} s: start the "
                                   "vehicle recorder first, or raise --wait-subscriber-s")
            polled = self._sock.poll(int(min(remaining, 0.1) * 1000) + 1, zmq.POLLIN)
            if polled and self._sock.recv()[:1] == b"\x01":  # XPUB: 1 = subscribe, 0 = unsubscribe
                return True
        return False

    def run(self) -> PublishSummary:
        """Wait for a subscriber, publish every sensor for ``duration_s``, return the summary."""
        cpu0, wall0 = time.process_time(), time.monotonic()
        try:
            self._log = self._open_log()
            if self.wait_for_subscriber():
                self._publish_all()
        finally:
            if self._log is not None:
                self._log.close()
        return PublishSummary(self._stats, time.monotonic() - wall0, time.process_time() - cpu0,
                              self._stop, self.endpoint)

    def close(self) -> None:
        """Close the socket, letting queued messages go out for up to ``linger_s``."""
        self._sock.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_log(self) -> IO[str] | None:
        path = self.config.log_path
        if path is None:
            return None
        try:
            return path.open("w", encoding="utf-8", buffering=1 << 16)
        except OSError as exc:
            raise PublishError(f"cannot write the publish log {path}: {exc}") from exc

    def _publish_all(self) -> None:
        cfg = self.config
        workers = {i: _Worker(i, s, self._done, self._wake)
                   for i, s in enumerate(self.sensors) if s.spec.threaded}
        counts = [frame_count(s.spec.rate_hz, cfg.duration_s) for s in self.sensors]
        heap = [(0.0, i, 0) for i, n in enumerate(counts) if n > 0]
        heapq.heapify(heap)
        for sensor in self.sensors:
            if not sensor.spec.threaded:
                sensor.capture(0)  # warm caches: otherwise the first ticks start ~30 ms late
        t0 = time.monotonic()
        try:
            while heap and not self._stop:
                due_s, i, k = heap[0]
                now_s = time.monotonic() - t0
                if now_s < due_s:
                    self._wake.wait(min(due_s - now_s, _POLL_S))
                    self._wake.clear()
                    self._drain()
                    continue
                heapq.heappop(heap)
                t_ns, t_mono = time.time_ns(), time.monotonic()
                self._count_lateness(i, now_s - due_s)
                if i in workers:
                    workers[i].submit(k, t_ns, t_mono)
                else:
                    self._send_all(_Done(i, t_ns, t_mono, self.sensors[i].capture(k)))
                if k + 1 < counts[i]:
                    heapq.heappush(heap, ((k + 1) / self.sensors[i].spec.rate_hz, i, k + 1))
                self._drain()
        finally:
            for worker in workers.values():
                worker.finish(timeout_s=10.0)
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                done = self._done.get_nowait()
            except queue.Empty:
                return
            if done.error is not None:
                raise PublishError(f"sensor {self.sensors[done.sensor].spec.topic} failed: "
                                   f"{done.error}") from done.error
            self._send_all(done)

    def _count_lateness(self, i: int, lateness_s: float) -> None:
        stats = self._stats[self.sensors[i].spec.topic]
        stats.max_lateness_s = max(stats.max_lateness_s, lateness_s)
        if lateness_s > self.config.late_threshold_s:
            stats.late += 1

    def _send_all(self, done: _Done) -> None:
        spec = self.sensors[done.sensor].spec
        stats = self._stats[spec.topic]
        for cap in done.captures:
            seq = self._seq[done.sensor]
            self._seq[done.sensor] = seq + 1
            msg = SensorMessage(spec.topic, spec.sensor_id, done.t_sensor_ns, 0, seq, spec.encoding,
                                cap.payload, cap.keyframe)
            self._sock.send_multipart(msg.to_frames())
            size = len(cap.payload)
            stats.messages += 1
            stats.bytes += size
            stats.keyframes += int(cap.keyframe)
            if self._log is not None:
                self._log.write(json.dumps({"topic": spec.topic, "seq": seq, "t_sensor_ns": done.t_sensor_ns,
                                            "keyframe": cap.keyframe, "bytes": size}) + "\n")
        stats.max_latency_s = max(stats.max_latency_s, time.monotonic() - done.t_capture_mono)
