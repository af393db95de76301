"""The link emulator over real TCP on loopback: shaping, latency and cuts."""

from __future__ import annotations

import asyncio
import time

from hil.link_emulator import LinkEmulator, LinkProfile


async def _sink_server() -> tuple[asyncio.AbstractServer, int, list[int]]:
    received: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = 0
        while chunk := await reader.read(65536):
            total += len(chunk)
        received.append(total)
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], received


async def _send(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, return the answer; a cut link answers b"" (EOF or a reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_bandwidth_cap_bounds_throughput() -> None:
    server, port, received = await _sink_server()
    rate = 400_000.0
    async with LinkEmulator("127.0.0.1", port, LinkProfile(rate_bps=rate)) as link:
        t0 = time.monotonic()
        reply = await _send(link.port, b"x" * 400_000)
        elapsed = time.monotonic() - t0
    server.close()
    assert reply == b"ok" and received == [400_000]
    # The bucket starts with a 50 ms burst, so 400 kB at 400 kB/s takes at least ~0.9 s.
    assert elapsed >= 0.85, elapsed
    assert elapsed < 3.0, elapsed


async def test_cut_after_bytes_aborts_mid_stream() -> None:
    server, port, received = await _sink_server()
    async with LinkEmulator("127.0.0.1", port, LinkProfile(cut_after_bytes=100_000)) as link:
        reply = await _send(link.port, b"y" * 300_000)
        await asyncio.sleep(0.1)
        assert link.stats.cuts == 1
        assert link.stats.bytes_up == 100_000
    server.close()
    assert reply == b""  # the client sees the connection die, no answer
    assert received and received[0] <= 100_000


async def test_latency_delays_each_block() -> None:
    server, port, _ = await _sink_server()
    async with LinkEmulator("127.0.0.1", port, LinkProfile(latency_s=0.2)) as link:
        t0 = time.monotonic()
        reply = await _send(link.port, b"z" * 10)
        elapsed = time.monotonic() - t0
    server.close()
    assert reply == b"ok"
    assert elapsed >= 0.4  # one block up and one block down, 0.2 s each
