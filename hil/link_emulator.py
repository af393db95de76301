"""A flaky-link emulator: a real TCP proxy that shapes bandwidth, adds latency and cuts connections.

It stands between the uploader and the cloud daemon on loopback, the way a cellular modem stands
between the car and the internet. Faults are scheduled, not random, unless a seed is given, so a
test can say exactly what happened: "cut every connection after 300 kB", "cut at t=2.0 s".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LinkProfile:
    """How the link behaves.

    ``rate_bps``: shared capacity in bytes/s in each direction (0 = unlimited).
    ``latency_s``: one-way delay added to every forwarded block.
    ``cut_after_bytes``: close each connection after it has forwarded this many upstream bytes
    (0 = never) — a cut in the middle of a PATCH body.
    ``cut_probability``: per forwarded block, chance of cutting the connection (seeded).
    """

    rate_bps: float = 0.0
    latency_s: float = 0.0
    cut_after_bytes: int = 0
    cut_probability: float = 0.0
    seed: int = 0
    block_bytes: int = 16 * 1024


@dataclass
class LinkStats:
    connections: int = 0
    cuts: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    started: float = field(default_factory=time.monotonic)


class _TokenBucket:
    def __init__(self, rate_bps: float, burst: float) -> None:
        self.rate = rate_bps
        self.burst = burst
        self.tokens = burst
        self.t = time.monotonic()

    async def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= n:
                self.tokens -= n
                return
            await asyncio.sleep((n - self.tokens) / self.rate)


class LinkEmulator:
    """``async with LinkEmulator(target_host, target_port, profile) as link:`` → ``link.port``."""

    def __init__(self, target_host: str, target_port: int, profile: LinkProfile,
                 listen_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.profile = profile
        self.stats = LinkStats()
        self._listen = (listen_host, listen_port)
        self._server: asyncio.AbstractServer | None = None
        self._rng = random.Random(profile.seed)
        burst = max(profile.block_bytes * 2, profile.rate_bps * 0.05)
        self._up = _TokenBucket(profile.rate_bps, burst)
        self._down = _TokenBucket(profile.rate_bps, burst)
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> LinkEmulator:
        self._server = await asyncio.start_server(self._handle, *self._listen)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            self._tasks.discard(task)
            return
        cut = asyncio.Event()
        up = asyncio.create_task(self._pump(c_reader, s_writer, self._up, True, cut))
        down = asyncio.create_task(self._pump(s_reader, c_writer, self._down, False, cut))
        try:
            _, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if pending and not cut.is_set():
                # A half-close (EOF one way): the other direction still carries the answer.
                await asyncio.wait(pending)
        except asyncio.CancelledError:
            cut.set()  # the emulator is closing: drop the connection like a dead link would
        finally:
            for t in (up, down):
                t.cancel()
            for w in (c_writer, s_writer):
                if cut.is_set():
                    w.transport.abort()  # a cut is abrupt: no FIN, no flush
                else:
                    w.close()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bucket: _TokenBucket,
                    upstream: bool, cut: asyncio.Event) -> None:
        p = self.profile
        sent = 0
        while True:
            block = await reader.read(p.block_bytes)
            if not block:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            if upstream and p.cut_after_bytes and sent + len(block) > p.cut_after_bytes:
                block = block[: p.cut_after_bytes - sent]
                if block:
                    writer.write(block)
                    await writer.drain()
                    self.stats.bytes_up += len(block)
                self.stats.cuts += 1
                cut.set()
                return
            if p.cut_probability and self._rng.random() < p.cut_probability:
                self.stats.cuts += 1
                cut.set()
                return
            await bucket.take(len(block))
            if p.latency_s:
                await asyncio.sleep(p.latency_s)
            writer.write(block)
            await writer.drain()
            sent += len(block)
            if upstream:
                self.stats.bytes_up += len(block)
            else:
                self.stats.bytes_down += len(block)
