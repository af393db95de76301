"""Startup recovery: nothing corrupt is ever queued, complete work is never thrown away."""

from __future__ import annotations

import os
from pathlib import Path

from shared.snapshot import MANIFEST_SUFFIX, read_sidecar, sha256_file
from tests.vehicle.test_uploader import make_snapshot
from vehicle.snapshot_writer import recover, snapshot_filename


def test_filename_is_sortable_and_colon_free() -> None:
    name = snapshot_filename("car-7", 1_700_000_000_123_456_789, "0f1e2d3c-aaaa-bbbb-cccc-000000000000")
    assert name == "car-7_20231114T221320.123Z_0f1e2d3c.mcap"


def test_truncated_active_file_is_discarded(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 50_000)
    data = snap.path.read_bytes()
    snap.path.unlink()
    snap.path.with_name(snap.path.name + MANIFEST_SUFFIX).unlink()
    active = snap.path.with_name(snap.path.name + ".active")
    active.write_bytes(data[: len(data) // 2])
    report = recover(tmp_path)
    assert report.complete == [] and report.discarded == [active.name]
    assert list(tmp_path.iterdir()) == []


def test_complete_active_file_is_recovered(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 50_000)
    snap.path.with_name(snap.path.name + MANIFEST_SUFFIX).unlink()
    os.replace(snap.path, snap.path.with_name(snap.path.name + ".active"))  # crash before the rename
    report = recover(tmp_path)
    assert report.recovered == [snap.path.name]
    (done,) = report.complete
    assert done.manifest.sha256 == sha256_file(snap.path) == snap.manifest.sha256
    assert read_sidecar(snap.path).snapshot_id == snap.manifest.snapshot_id


def test_missing_sidecar_is_rebuilt_and_a_corrupt_file_discarded(tmp_path: Path) -> None:
    good = make_snapshot(tmp_path, 50_000)
    bad = make_snapshot(tmp_path, 50_000, t0=1_800_000_000 * 10**9)
    good.path.with_name(good.path.name + MANIFEST_SUFFIX).unlink()
    bad.path.with_name(bad.path.name + MANIFEST_SUFFIX).unlink()
    raw = bytearray(bad.path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # flip a byte inside a compressed chunk
    bad.path.write_bytes(bytes(raw))
    report = recover(tmp_path)
    assert report.rebuilt == [good.path.name] and report.discarded == [bad.path.name]
    assert [s.path for s in report.complete] == [good.path]
    assert read_sidecar(good.path).sha256 == good.manifest.sha256
    assert not bad.path.exists()


def test_sidecar_that_disagrees_on_size_is_rebuilt(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path, 10_000)
    side = snap.path.with_name(snap.path.name + MANIFEST_SUFFIX)
    side.write_bytes(b"\x00garbage")
    (done,) = recover(tmp_path).complete
    assert done.manifest.size_bytes == snap.path.stat().st_size
