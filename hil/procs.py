"""Real service processes under supervision, the way systemd runs them.

Each :class:`ManagedProcess` gets its own ``NOTIFY_SOCKET`` (an AF_UNIX datagram socket owned by
the bench), so ``wait_ready`` waits for the service's own ``READY=1`` rather than guessing with
sleeps; ``stop`` sends SIGTERM and waits for a bounded graceful drain, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from hil.errors import ProcessFailed


class ManagedProcess:
    """One child process with readiness notification and captured logs."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = workdir / f"{name}.log"
        self._notify_path = workdir / f".{name}.notify"
        self._env = {**os.environ, **(env or {})}
        self._sock: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.notifications: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> ManagedProcess:
        self._notify_path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self._notify_path))
        env = {**self._env, "NOTIFY_SOCKET": str(self._notify_path), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        # Like systemd, keep reading notifications for the whole life of the process (watchdog
        # pings arrive every second); a manager that stops reading would fill the socket's queue.
        self._reader = threading.Thread(target=self._read_notifications, args=(self._sock,),
                                        name=f"{self.name}-notify", daemon=True)
        self._reader.start()
        return self

    def _read_notifications(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while True:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None and self._sock is None:
                    return
                continue
            except OSError:  # closed by stop()
                return
            self.notifications.extend(data.decode(errors="replace").splitlines())

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until the process sends READY=1; raise :class:`ProcessFailed` if it dies first."""
        deadline = time.monotonic() + timeout_s
        while "READY=1" not in self.notifications:
            if self.proc is None or self.proc.poll() is not None:
                raise ProcessFailed(f"{self.name} exited with {self.returncode} before READY=1\n{self.log_tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessFailed(f"{self.name} sent no READY=1 within {timeout_s:.0f} s\n{self.log_tail()}")
            time.sleep(min(left, 0.05))

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ProcessFailed(f"{self.name} still running after {timeout_s:.0f} s\n{self.log_tail()}") from exc

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, wait up to ``timeout_s`` for a graceful exit, else SIGKILL. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._notify_path.unlink(missing_ok=True)
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(f"  [{self.name}] {line}" for line in text[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
