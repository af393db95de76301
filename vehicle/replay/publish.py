"""Replay of a real recording into the running service, through a real ZeroMQ socket.

The replayer plays the part of the sensor drivers: it binds an XPUB socket on the endpoint the
recorder connects to, waits until a subscriber is there, and publishes every message at its
recorded time divided by the speed factor. Timestamps are never rewritten: ``t_sensor_ns`` stays
in recording time, so the recorder's buffer, triggers and windows (all driven by message time)
see the drive exactly as recorded, whatever the speed.

Sources are named ``KIND:PATH``; the one kind today is ``comma2k19`` (see
:mod:`vehicle.replay.comma2k19`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from shared.messages import SensorMessage
from vehicle.errors import VehicleError
from vehicle.replay.comma2k19 import ReplaySourceError, load_segment, segment_messages

NS = 1_000_000_000
#: Payloads at least this large travel zero-copy (below it a copy is cheaper than the bookkeeping).
ZERO_COPY_BYTES = 64 * 1024


class ReplayPublishError(VehicleError):
    """The replay could not publish: the endpoint cannot be bound, or nobody subscribed in time."""

    reason = "replay_publish"


def _comma2k19(path: Path) -> list[SensorMessage]:
    return segment_messages(load_segment(path))


#: Source kinds → loader of the whole recording as time-sorted messages.
SOURCES: dict[str, Callable[[Path], list[SensorMessage]]] = {"comma2k19": _comma2k19}


def load_source(spec: str) -> list[SensorMessage]:
    """Messages of the source ``KIND:PATH`` (e.g. ``comma2k19:data/seg40``), sorted by sensor time."""
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise ReplaySourceError(f"source {spec!r} must look like KIND:PATH, e.g. comma2k19:path/to/segment")
    loader = SOURCES.get(kind)
    if loader is None:
        raise ReplaySourceError(f"unknown source kind {kind!r} (known: {', '.join(sorted(SOURCES))})")
    return loader(Path(path))


@dataclass
class ReplayReport:
    """What a replay published: messages per topic, recording and wall duration, worst lateness."""

    published: Counter[str] = field(default_factory=Counter)
    recording_s: float = 0.0
    wall_s: float = 0.0
    max_late_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"published": dict(sorted(self.published.items())), "recording_s": round(self.recording_s, 6),
                "wall_s": round(self.wall_s, 6), "max_late_s": round(self.max_late_s, 6)}


class Replayer:
    """An XPUB socket bound on ``endpoint`` that publishes recordings on their own schedule."""

    def __init__(self, endpoint: str, *, context: zmq.Context[zmq.Socket[bytes]] | None = None,
                 linger_ms: int = 5000) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket[bytes] = self._ctx.socket(zmq.XPUB)
        # No high-water mark: a replay must never drop; a slow recorder slows the socket instead.
        self._sock.setsockopt(zmq.SNDHWM, 0)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(linger=0)
            raise ReplayPublishError(f"cannot bind the replay endpoint {endpoint}: {exc}") from exc
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def wait_subscriber(self, timeout_s: float) -> None:
        """Block until a SUB socket subscribes, or raise :class:`ReplayPublishError`."""
        deadline = time.monotonic() + timeout_s
        while True:
            left_ms = max(0, round((deadline - time.monotonic()) * 1000))
            if not self._sock.poll(left_ms):
                raise ReplayPublishError(
                    f"no subscriber on {self.endpoint} within {timeout_s:g} s: is the recorder running "
                    "with this endpoint in [sources] endpoints?")
            if self._sock.recv()[:1] == b"\x01":  # a subscription (b"\x00" is an unsubscription)
                return

    def publish(self, messages: Sequence[SensorMessage], speed: float = 1.0, *,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                progress: Callable[[int], None] | None = None) -> ReplayReport:
        """Send ``messages`` (sorted by ``t_sensor_ns``) at recorded spacing / ``speed``.

        Message ``i`` is due at ``start + (t_i - t_0) / speed`` on the monotonic clock; everything
        due is sent at once, then the replayer sleeps until the next message is due.
        ``progress(n)`` is called with the number of messages sent since its previous call.
        """
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        report = ReplayReport()
        if not messages:
            return report
        t0 = messages[0].t_sensor_ns
        report.recording_s = (messages[-1].t_sensor_ns - t0) / NS
        started = clock()
        i, n = 0, len(messages)
        while i < n:
            now = clock()
            due = started + (messages[i].t_sensor_ns - t0) / NS / speed
            if due > now:
                sleep(min(due - now, 0.05))
                continue
            report.max_late_s = max(report.max_late_s, now - due)
            first = i
            while i < n and started + (messages[i].t_sensor_ns - t0) / NS / speed <= now:
                msg = messages[i]
                self._sock.send_multipart(msg.to_frames(), copy=len(msg.payload) < ZERO_COPY_BYTES)
                report.published[msg.topic] += 1
                i += 1
            if progress is not None:
                progress(i - first)
        report.wall_s = clock() - started
        return report

    def close(self) -> None:
        """Close the socket, waiting up to the linger time for queued messages to leave."""
        self._sock.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
