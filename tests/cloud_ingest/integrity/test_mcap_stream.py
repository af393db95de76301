"""The streaming integrity scan against the mcap library's own reader, on real snapshots and files of
the reference writer: any split of the bytes gives the same scan, and damage anywhere is either
caught as an :class:`IntegrityFailure` or provably harmless (the scan comes out identical)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from cloud_ingest.errors import IntegrityFailure
from cloud_ingest.integrity.checks import SnapshotScan, SnapshotScanner, scan_snapshot
from cloud_ingest.integrity.mcap_stream import MAX_RECORD_BYTES, McapFormatError, McapStream
from shared import messages
from shared.manifest import SnapshotManifest
from shared.messages import SensorMessage
from shared.snapshot import MANIFEST_ATTACHMENT
from tests.cloud_ingest.conftest import T0_NS, snapshot_messages, write_snapshot


def reference(path: Path) -> dict[str, list[int]]:
    """Per-topic log times as the mcap library reads them (CRCs checked, file order)."""
    out: dict[str, list[int]] = {}
    with open(path, "rb") as fh:
        for _s, channel, rec in make_reader(fh, validate_crcs=True).iter_messages(log_time_order=False):
            assert messages.from_record(rec.data).topic == channel.topic
            out.setdefault(channel.topic, []).append(rec.log_time)
    return out


def times(scan: SnapshotScan) -> dict[str, list[int]]:
    return {t: c.times_ns.tolist() for t, c in scan.channels.items()}


def fed(data: bytes, cuts: list[int]) -> SnapshotScan:
    scanner = SnapshotScanner()
    prev = 0
    for cut in [*sorted(cuts), len(data)]:
        scanner.feed(data[prev:cut])
        prev = cut
    return scanner.finish()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, h265_units: list[tuple[bytes, bool]],
         kitti_points: bytes) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("stream") / "snap.mcap"
    write_snapshot(path, snapshot_messages(4.0, h265_units, kitti_points))
    return path, path.read_bytes()


def test_stream_scan_matches_the_mcap_reader_on_a_real_snapshot(real: tuple[Path, bytes]) -> None:
    path, _ = real
    scan = scan_snapshot(path)
    assert times(scan) == reference(path)
    assert {c.topic: c.count for c in scan.manifest.channels} == {t: len(v) for t, v in times(scan).items()}
    assert int(scan.channels["camera/front"].keyframes.sum()) == 4


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10**9), max_size=30))
def test_any_split_of_the_bytes_gives_the_same_scan(real: tuple[Path, bytes], cuts: list[int]) -> None:
    path, data = real
    scan = fed(data, [c % (len(data) + 1) for c in cuts])
    assert times(scan) == times(scan_snapshot(path)) and scan.manifest == scan_snapshot(path).manifest


@pytest.mark.parametrize("compression", [CompressionType.LZ4, CompressionType.ZSTD, CompressionType.NONE])
def test_files_of_the_reference_writer_scan_like_the_reader(tmp_path: Path, compression: CompressionType) -> None:
    path = tmp_path / "ref.mcap"
    manifest = SnapshotManifest(snapshot_id="s", vehicle_id="car-1", created_ns=T0_NS, start_ns=T0_NS,
                                end_ns=T0_NS + 10**9, triggers=(), channels=(), software_version="0",
                                model_version="m", calibration_version="c")
    with open(path, "wb") as fh:
        w = Writer(fh, chunk_size=4096, compression=compression)
        w.start(profile="avdata", library="test")
        schema = w.register_schema(name="avdata.SensorMessage", encoding="", data=b"")
        ids = {t: w.register_channel(t, "msgpack", schema) for t in ("imu", "lidar/top")}
        for i in range(200):
            topic = "imu" if i % 3 else "lidar/top"
            msg = SensorMessage(topic, "s0", T0_NS + i, 0, i, "raw", bytes([i % 256]) * (i * 7))
            w.add_message(ids[topic], log_time=T0_NS + i, data=msg.to_record(), publish_time=T0_NS + i)
        w.add_attachment(T0_NS, T0_NS, MANIFEST_ATTACHMENT, "application/msgpack", manifest.encode())
        w.finish()
    assert times(scan_snapshot(path)) == reference(path)


def test_damage_anywhere_is_caught_or_harmless(real: tuple[Path, bytes]) -> None:
    path, data = real
    good = scan_snapshot(path)
    rng = random.Random(7)
    caught = 0
    for pos in rng.sample(range(len(data)), 400):
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        try:
            scan = fed(bytes(bad), [rng.randrange(len(data))])
        except IntegrityFailure:
            caught += 1
            continue
        assert times(scan) == times(good) and scan.manifest == good.manifest, pos  # e.g. a message index
        assert all(np.array_equal(scan.channels[t].keyframes, good.channels[t].keyframes) for t in scan.channels)
    assert caught > 300  # nearly every byte is covered by a CRC or by framing
    for cut in rng.sample(range(len(data)), 100):
        with pytest.raises(McapFormatError):
            fed(data[:cut], [cut // 2])


class Ignore:
    """A handler that keeps nothing."""

    def channel(self, channel_id: int, topic: str) -> None:
        pass

    def message(self, channel_id: int, log_time_ns: int, data: memoryview) -> None:
        pass

    def attachment(self, name: str, data: memoryview) -> None:
        pass


def test_oversized_records_and_trailing_bytes_are_refused_at_once(real: tuple[Path, bytes]) -> None:
    _, data = real
    stream = McapStream(Ignore())
    with pytest.raises(McapFormatError, match="limit"):
        stream.feed(data[:8] + bytes([0x01]) + (MAX_RECORD_BYTES + 1).to_bytes(8, "little"))
    with pytest.raises(McapFormatError):
        stream.feed(b"more")  # a failed stream stays failed
    scanner = SnapshotScanner()
    scanner.feed(data + b"\x00")
    with pytest.raises(McapFormatError, match="after the closing magic"):
        scanner.finish()
    with pytest.raises(McapFormatError, match="not an MCAP"):
        McapStream(Ignore()).feed(b"PK\x03\x04" + data[4:64])
