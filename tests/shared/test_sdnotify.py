"""sd_notify over a real AF_UNIX datagram socket, as systemd provides it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from shared.sdnotify import Notifier


def test_ready_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    try:
        n = Notifier(str(path))
        assert n.enabled
        n.ready("listening on 8080")
        assert server.recv(1024) == b"READY=1\nSTATUS=listening on 8080"
        n.watchdog()
        assert server.recv(1024) == b"WATCHDOG=1"
    finally:
        server.close()


def test_without_notify_socket_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    n.ready()  # must not raise


def test_watchdog_interval_is_half_the_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    assert Notifier("").watchdog_interval_s() == 5.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert Notifier("").watchdog_interval_s() is None


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gone.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    n = Notifier(str(path))
    server.close()
    path.unlink()
    n.watchdog()  # the service must survive its manager's socket disappearing
    assert "sd_notify" in caplog.text and "failed" in caplog.text


def test_a_manager_that_never_reads_does_not_block_the_service(tmp_path: Path) -> None:
    import time

    path = tmp_path / "full.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    try:
        n = Notifier(str(path))
        t0 = time.monotonic()
        for _ in range(5000):  # far more than a datagram queue holds
            n.watchdog()
        assert time.monotonic() - t0 < 2.0
        assert server.recv(64) == b"WATCHDOG=1"
    finally:
        server.close()
