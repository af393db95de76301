"""Disk full on the vehicle: typed error, counted, partial file gone, room made, recorder goes on.

The recorder runs in a child process on a real 8 MiB tmpfs mounted in a private mount namespace
(``unshare -m``). Where mounting is refused, the child runs with RLIMIT_FSIZE instead, so writes of
large files fail with EFBIG; eviction cannot help a per-file limit, so that mode checks less.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.messages import SensorMessage
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from vehicle.errors import DiskFullError, SnapshotWriteError
from vehicle.snapshot.writer import SnapshotMeta, write_snapshot
from vehicle.triggers.windows import PendingWindow

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


def _child(mode: str, directory: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tests.vehicle.disk_full_child", mode, str(directory)]
    if mode == "tmpfs":
        cmd = ["unshare", "-m", "--propagation", "private", *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def _run_full_disk(tmp_path: Path) -> dict[str, Any]:
    done = _child("tmpfs", tmp_path / "mnt") if shutil.which("unshare") else None
    if done is None or done.returncode != 0:
        done = _child("fsize", tmp_path / "mnt")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_full_disk_evicts_oldest_retries_and_keeps_recording(tmp_path: Path) -> None:
    r = _run_full_disk(tmp_path)
    assert not [f for f in r["files"] if f.endswith(".active")], "the partial file is discarded"
    # The snapshot larger than the whole disk is dropped and counted; nothing stops the recorder.
    assert r["disk_full_dropped"] == 1 and r["snapshots_failed"] == 1
    assert r["drops_disk"] > 100, "the dropped snapshot's messages are counted at stage 'disk'"
    assert r["snapshots_written"] == 4, "every other trigger still produced a snapshot"
    pending = [e for e in r["entries"] if e["state"] == "pending"]
    assert all(r["readable"][e["file"]] for e in pending)
    assert all(e["file"] in r["files"] for e in pending)
    if r["mode"] == "tmpfs":
        # The 3rd and 4th brake snapshots only fit after evicting the two oldest, in age order.
        assert r["disk_full_retried"] == 3
        evicted = [e for e in r["entries"] if e["reason"] == "evicted: disk full"]
        assert len(evicted) == 2 and len(pending) == 2
        assert max(e["created_ns"] for e in evicted) < min(e["created_ns"] for e in pending)
        assert not any(e["file"] in r["files"] for e in evicted)
    else:
        assert r["disk_full_retried"] == 1 and len(pending) == 4


def test_an_error_that_is_not_disk_full_stays_a_plain_write_error(tmp_path: Path) -> None:
    ev = TriggerEvent(TriggerKind.HARD_BRAKE, NS, 0, 2 * NS, 80, TriggerSource.RULE)
    items = {"imu": [(NS, SensorMessage("imu", "i", NS, NS, 0, "imu_v1", b"x" * 10))]}
    blocked = tmp_path / "not-a-dir"
    blocked.write_bytes(b"")
    with pytest.raises(SnapshotWriteError) as info:
        write_snapshot(blocked / "snaps", PendingWindow(0, 2 * NS, (ev,)), items, SnapshotMeta("car", "0"))
    assert not isinstance(info.value, DiskFullError)

