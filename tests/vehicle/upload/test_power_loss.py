"""Power loss on the upload queue: SIGKILL of the uploader mid-PATCH and mid-transition, then restart.

A real ``avdata-vehicle upload`` process (through ``uploader_child``) uploads five real snapshots
to a real tus server on loopback whose link is slow, so most instants fall inside a PATCH. Each
cycle kills it at a seeded instant: half at a random time, half right before or after a seeded
queue state change is committed. After every kill: whatever the queue calls done is stored in
the cloud, and the database passes SQLite's integrity check. At the end: every snapshot was
stored exactly once (a restart resumes or gets the duplicate answer, never a second upload),
every entry is done and its file deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import sys
from pathlib import Path

from aiohttp import web

from tests.vehicle.tus_server import TusState, make_app
from tests.vehicle.upload.test_uploader import make_snapshot
from vehicle.config.tree import load_config
from vehicle.upload.queue import UploadQueue

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[3]
SNAPSHOTS = 5
CYCLES = 10


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "vehicle.toml"
    path.write_text(f"""
vehicle_id = "car-1"
data_dir = "{tmp_path / 'data'}"
[uploader]
url = "{url}"
token = "tok-1"
chunk_bytes = 16384
backoff_initial_s = 0.01
backoff_max_s = 0.05
poll_s = 0.05
""")
    return path


def _check_consistent(db: Path, state: TusState) -> list[tuple[str, str, int]]:
    """Integrity check; done entries are stored in the cloud; returns (state, sha, has_file)."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows: list[tuple[str, str, int]] = con.execute(
            "SELECT state, sha256, has_file FROM snapshots").fetchall()
    finally:
        con.close()
    stored = {sha for _, sha in state.stored}
    assert all(sha in stored for st, sha, _ in rows if st == "done"), "an acknowledged upload was lost"
    assert all(st in ("pending", "uploading", "done") for st, _, _ in rows), rows
    return rows


async def test_sigkill_mid_patch_and_mid_transition_loses_nothing_and_uploads_once(tmp_path: Path) -> None:
    state = TusState(tokens={"car-1": "tok-1"}, piece_delay_s=0.01)
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    cfg_path = _config(tmp_path, f"http://127.0.0.1:{runner.addresses[0][1]}/files/")
    cfg = load_config(cfg_path)
    queue = UploadQueue(cfg.queue_path, cfg.snapshots_dir, cfg.queue.max_bytes)
    shas = set()
    for i in range(SNAPSHOTS):
        snap = make_snapshot(cfg.snapshots_dir, payload_bytes=160_000, t0=(1_700_000_000 + 10 * i) * NS,
                             priority=50 + i)
        queue.enqueue(snap)
        shas.add(snap.manifest.sha256)
    queue.close()
    rng = random.Random(20240611)
    killed_mid_patch = killed_at_transition = 0
    cmd = [sys.executable, "-m", "tests.vehicle.uploader_child", str(cfg_path)]
    try:
        for cycle in range(CYCLES):
            if cycle % 2:
                args = [str(rng.randint(1, 6)), rng.choice(["before", "after"])]
                proc = await asyncio.create_subprocess_exec(*cmd, *args, cwd=ROOT,
                                                            stderr=asyncio.subprocess.DEVNULL)
                try:
                    killed_at_transition += await asyncio.wait_for(proc.wait(), 15) == -signal.SIGKILL
                except TimeoutError:  # fewer state changes were left than the seed asked for
                    proc.kill()
                    await proc.wait()
            else:
                proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stderr=asyncio.subprocess.DEVNULL)
                for _ in range(1000):
                    if state.in_patch or proc.returncode is not None:
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0.0, 0.02))
                killed_mid_patch += state.in_patch > 0
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            _check_consistent(cfg.queue_path, state)
        # Restart once more and let it drain the queue.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp_path / "notify.sock"))
        notify.setblocking(False)
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL)
        ready = b""
        while b"READY=1" not in ready and proc.returncode is None:
            with contextlib.suppress(BlockingIOError):
                ready += notify.recv(4096)
            await asyncio.sleep(0.01)
        for _ in range(400):
            rows = _check_consistent(cfg.queue_path, state)
            if all(st == "done" for st, _, _ in rows):
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        notify.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    assert killed_mid_patch >= 3, "the test must actually kill during PATCH requests"
    assert killed_at_transition >= 3, "the test must actually kill around queue transitions"
    rows = _check_consistent(cfg.queue_path, state)
    assert sorted(st for st, _, _ in rows) == ["done"] * SNAPSHOTS
    assert all(has_file == 0 for _, _, has_file in rows)
    assert sorted(state.completed) == sorted(shas), "each snapshot stored exactly once, none twice"
    assert not list(cfg.snapshots_dir.glob("*.mcap")), "delivered files are deleted"
