"""The ZeroMQ edge: one SUB socket connected to every sensor endpoint.

Frames are received with ``copy=False`` so payloads reach the ring buffer as zero-copy
memoryviews of the ZeroMQ frames. Bad frames raise a :class:`shared.errors.ContractError`; the
receiver counts it by reason (``drops{stage="decode"}``), logs it at most once per second per
reason, and goes on. Messages ZeroMQ discarded at a high-water mark (it reports none) show as jumps
in the publisher's per-stream ``seq`` and are counted as ``drops{stage="socket", reason="seq_gap"}``
(see :mod:`vehicle.sources.sequence_gaps`); a refused message is not counted again as a gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zmq

from shared.errors import ContractError
from shared.messages import SensorMessage, from_frames
from vehicle.metrics import VehicleMetrics
from vehicle.sources.sequence_gaps import SequenceGaps, peek_stream

log = logging.getLogger(__name__)


class SteadyClock:
    """Vehicle-clock nanoseconds that never step: wall time at start, advanced by CLOCK_MONOTONIC.

    Receive stamps come from here, so an NTP step of the system clock (forward or back) moves no
    buffered time, window, cooldown or clock fit; NTP slewing still reaches it through the
    monotonic clock. Over a long uptime it can differ from the stepped wall clock by the steps.
    """

    def __init__(self, wall_ns: Callable[[], int] = time.time_ns,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._monotonic_ns = monotonic_ns
        self._base_ns = wall_ns() - monotonic_ns()

    def __call__(self) -> int:
        return self._base_ns + self._monotonic_ns()


class Receiver:
    """A SUB socket subscribed to every topic on every endpoint."""

    def __init__(
        self, endpoints: tuple[str, ...], metrics: VehicleMetrics, *, rcvhwm: int = 100_000,
        max_payload_bytes: int = 64 * 1024 * 1024, context: zmq.Context[zmq.Socket[bytes]] | None = None,
        clock_ns: Callable[[], int] | None = None,
    ) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket[bytes] = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        for ep in endpoints:
            self._sock.connect(ep)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._metrics = metrics
        self._max_payload = max_payload_bytes
        self._clock_ns = clock_ns or SteadyClock()
        self._last_log_s: dict[str, float] = {}
        self.gaps = SequenceGaps()
        self.endpoints = endpoints

    def wait(self, timeout_ms: int) -> bool:
        """Whether a message is ready within ``timeout_ms``."""
        return bool(self._poller.poll(timeout_ms))

    def receive(self, timeout_ms: int, max_batch: int = 1000) -> list[SensorMessage]:
        """Wait up to ``timeout_ms`` for traffic, then drain up to ``max_batch`` messages."""
        return [msg for msg, _ in self.receive_accounted(timeout_ms, max_batch)]

    def receive_accounted(self, timeout_ms: int, max_batch: int = 1000) -> list[tuple[SensorMessage, int]]:
        """Like :meth:`receive`, each message with how many of its stream just before it were already
        counted as drops here (lost on the socket, or refused by the decoder)."""
        out: list[tuple[SensorMessage, int]] = []
        # A blocking receive with a timeout wakes faster than zmq_poll followed by a receive.
        self._sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        flags = 0
        gaps, metrics = self.gaps, self._metrics
        while len(out) < max_batch:
            try:
                frames = self._sock.recv_multipart(flags, copy=False)
            except zmq.Again:
                break
            flags = zmq.NOBLOCK
            t_recv_ns = self._clock_ns()
            msg = self.decode([f.buffer for f in frames], t_recv_ns)
            if msg is None:
                continue
            loss = gaps.observe_loss(msg)
            if loss.socket:
                metrics.drop("socket", "seq_gap", loss.socket)
            out.append((msg, loss.explained))
        return out

    def decode(self, frames: list[memoryview], t_recv_ns: int | None = None) -> SensorMessage | None:
        """Decode frames (stamping ``t_recv_ns`` when given), or count and (rate-limited) log why not
        and return ``None``."""
        try:
            return from_frames(frames, max_payload_bytes=self._max_payload, t_recv_ns=t_recv_ns)
        except ContractError as exc:
            self._metrics.drop("decode", exc.reason)
            self._reject(frames)
            now = time.monotonic()
            if now - self._last_log_s.get(exc.reason, -1e9) >= 1.0:
                self._last_log_s[exc.reason] = now
                log.warning("dropped a bad sensor message", extra={"reason": exc.reason, "error": str(exc)})
            return None

    def _reject(self, frames: list[memoryview]) -> None:
        """Keep a refused message's place in its stream, so it does not also count as a socket gap."""
        topic, sensor_id, seq = peek_stream(frames)
        if topic is None:
            return
        if sensor_id is None or seq is None:
            self.gaps.reject_unknown(topic)
            return
        lost = self.gaps.reject(topic, sensor_id, seq)
        if lost:
            self._metrics.drop("socket", "seq_gap", lost)

    def close(self) -> None:
        self._sock.close(linger=0)
