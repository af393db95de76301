"""Real daemon processes for load tests and benchmarks: N ``avdata-cloud serve`` and one
``avdata-cloud relay`` on one config (PostgreSQL + NATS + a shared data directory)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Context manager: start the daemons (and the relay), wait until each answers, stop them with
    SIGTERM (SIGKILL after ``grace_s``) on exit. ``bases`` are the daemons' base URLs."""

    def __init__(self, config_path: Path, daemons: int = 2, relay: bool = True, grace_s: float = 20.0) -> None:
        self.config_path, self.grace_s = config_path, grace_s
        self.ports = [free_port() for _ in range(daemons)]
        self.bases = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.relay = relay
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("NOTIFY_SOCKET", None)
        return subprocess.Popen([sys.executable, "-m", "cloud_ingest.cli", *args, "--config", str(self.config_path)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Cluster:
        try:
            for port in self.ports:
                self.procs.append(self._spawn("serve", "--port", str(port)))
            if self.relay:
                self.procs.append(self._spawn("relay"))
            deadline = time.monotonic() + 30
            for base in self.bases:
                while True:
                    try:
                        with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                            if r.status == 200:
                                break
                    except OSError:
                        if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                            raise RuntimeError("a daemon did not start; run it by hand to see why") from None
                        time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[int | None]:
        """SIGTERM everything, wait, SIGKILL stragglers; the exit codes."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(self.grace_s))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
