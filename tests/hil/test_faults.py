"""Fault injection on the whole loop (real processes): a link that cuts every 1.6 MB, kill -9 of the
vehicle service mid-upload and kill -9 of the cloud daemon mid-upload. The snapshot must arrive once,
whole, with the counts that were published, and the link must carry at most one chunk again per cut."""

from __future__ import annotations

import re

import pytest

from hil.faults import FaultConfig, FaultResult, run_faults
from shared.snapshot import sha256_file
from tests.hil.expect import expected_counts, published

pytestmark = pytest.mark.slow

CHUNK_BYTES = 1_048_576  # the rig's [uploader] chunk_bytes


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> FaultResult:
    return run_faults(FaultConfig(workdir=tmp_path_factory.mktemp("faults")))


def test_both_kills_happened_mid_upload(faulted: FaultResult) -> None:
    kills = [e for e in faulted.events if e.startswith("kill -9")]
    assert len(kills) == 2
    assert "vehicle" in kills[0] and "cloud" in kills[1]
    offsets = [int(re.search(r"offset (\d+)", k).group(1)) for k in kills]  # type: ignore[union-attr]
    assert 0 < offsets[0] < offsets[1]


def test_exactly_one_segment_with_the_published_counts(faulted: FaultResult) -> None:
    demo = faulted.demo
    assert len(demo.segments) == 1
    seg = demo.segments[0]
    trig = seg["triggers"][0]
    assert trig["kind"] == "hard_brake"
    want = expected_counts(published(demo), trig["start_ns"], trig["end_ns"])
    assert {s["topic"]: s["count"] for s in seg["streams"]} == dict(want)


def test_stored_bytes_equal_the_vehicles_and_resends_stay_within_a_chunk_per_cut(faulted: FaultResult) -> None:
    demo = faulted.demo
    raw = demo.cloud_dir / "store" / demo.segments[0]["raw_key"]
    sha = sha256_file(raw)
    assert sha == demo.segments[0]["snapshot_sha256"]
    stats = re.search(r"connections (\d+), cuts (\d+), up (\d+) B", faulted.link_log.read_text())
    assert stats is not None, "the link emulator prints its totals when it stops"
    cuts, up = int(stats.group(2)), int(stats.group(3))
    assert cuts >= 3
    size = raw.stat().st_size
    # Every byte crossed at least once; a cut or a kill costs at most the chunk in flight (+ headers).
    assert size <= up <= size + (cuts + 2) * (CHUNK_BYTES + 4096)


def test_the_restarted_services_exit_cleanly(faulted: FaultResult) -> None:
    codes = faulted.demo.exit_codes
    assert codes["vehicle (killed)"] == -9 and codes["cloud (killed)"] == -9
    assert codes["vehicle-restarted"] == 0 and codes["cloud-restarted"] == 0 and codes["link"] == 0
