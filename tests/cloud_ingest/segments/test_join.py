"""The pipeline on both DB back-ends with real snapshots: joining short adjacent snapshots,
idempotency, calibration attached per segment, processed outputs and GNSS map context."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.calibration.registry import CalibrationRegistry
from cloud_ingest.config import CloudConfig
from cloud_ingest.pipeline import IngestDeps, IngestResult, ingest_upload
from cloud_ingest.segments.join import joined_id
from cloud_ingest.storage.metadata.protocol import UploadRecord
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from cloud_ingest.storage.objects.local import LocalObjectStore
from shared.messages import SensorMessage
from shared.payloads import GnssFix, encode_small
from shared.segment import Segment
from tests.cloud_ingest.calibration.test_registry import bundle
from tests.cloud_ingest.conftest import NS, T0_NS, snapshot_messages, write_snapshot


class Env:
    """A DB, a local store and the calibration registry, plus counted missing calibrations."""

    def __init__(self, db: SQLMetadataDB, root: Path) -> None:
        self.db, self.root = db, root
        self.store = LocalObjectStore(root / "store")
        self.registry = CalibrationRegistry(db)
        self.missing: list[str] = []

    def ingest(self, snap: tuple[Path, str], vehicle: str = "car-1") -> IngestResult:
        path, sha = snap
        copy = self.root / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(path, copy)
        rec = UploadRecord(uuid.uuid4().hex, vehicle, path.stat().st_size, 0, sha, "s", "f", "in_progress", 1, 2**62)
        self.db.create_upload(rec)
        return ingest_upload(copy, rec, IngestDeps(self.db, self.store, self.root / "q", self.registry, 2 * NS,
                                                   self.missing.append))

    def count(self, table: str) -> int:
        with self.db.transaction() as tx:
            return int(tx.run(f"SELECT COUNT(*) FROM {table}")[0][0])

    def live(self, vehicle: str = "car-1") -> list[Segment]:
        return [Segment.decode(r.record) for r in self.db.list_segments(vehicle, 100, None) if not r.superseded_by]


@pytest.fixture
def env(cloud_config: CloudConfig, tmp_path: Path) -> Iterator[Env]:
    from tests.cloud_ingest.conftest import open_config_db

    db = open_config_db(cloud_config)
    yield Env(db, tmp_path)
    db.close()


@pytest.fixture(scope="module")
def snaps(tmp_path_factory: pytest.TempPathFactory, h265_units: list[tuple[bytes, bool]],
          kitti_points: bytes) -> dict[str, tuple[Path, str]]:
    """car-1: 8 s snapshots A, B, C one second apart (B with a moving GNSS track), D 5 s after C, and
    L (25 s); G: B's drive recorded by car-2."""
    root = tmp_path_factory.mktemp("snaps")
    out: dict[str, tuple[Path, str]] = {}
    for name, start_s, dur_s in (("A", 0, 8), ("B", 9, 8), ("C", 18, 8), ("D", 31, 8), ("L", 100, 25), ("G", 9, 8)):
        t0 = T0_NS + start_s * NS
        msgs = snapshot_messages(float(dur_s), h265_units, kitti_points, t0_ns=t0)
        if name in "BG":
            msgs += [SensorMessage("gnss", "gnss0", t0 + i * NS // 10 + 4, 0, i, "gnss_v1",
                                   encode_small(GnssFix(48.1 + i * 1e-4, 11.5 + i * 2e-4, 520.0, 4, 0.02)))
                     for i in range(dur_s * 10)]
            msgs.append(SensorMessage("gnss", "gnss0", t0 + dur_s * NS - 9, 0, 999, "gnss_v1", b"junk"))
            msgs.sort(key=lambda m: m.t_sensor_ns)
        path = root / f"{name}.mcap"
        out[name] = (path, write_snapshot(path, msgs, vehicle_id="car-2" if name == "G" else "car-1", start_ns=t0,
                                          end_ns=t0 + dur_s * NS - 10))
    return out


def test_three_short_snapshots_join_into_one_segment_and_members_are_superseded(
        env: Env, snaps: dict[str, tuple[Path, str]]) -> None:
    a, b, c = (env.ingest(snaps[k]) for k in "ABC")
    assert a.joined is None
    assert b.joined is not None and set(b.joined[1]) == {a.segment_ids[0], b.segment_ids[0]}
    assert c.joined is not None
    leaves = (a.segment_ids[0], b.segment_ids[0], c.segment_ids[0])
    live = env.live()
    assert [s.segment_id for s in live] == [joined_id(leaves)] == [c.joined[0]]
    joined = live[0]
    assert joined.start_ns == T0_NS and joined.end_ns == T0_NS + 26 * NS - 10
    assert joined.provenance.parent_segment_ids == leaves
    assert len(joined.provenance.snapshot_sha256) == 3
    assert len({r.object_key for r in joined.camera_frames}) == 3  # one raw snapshot per member
    assert sum(r.count for r in joined.lidar_sweeps) == 3 * 80
    assert [t.kind.value for t in joined.triggers] == ["hard_brake"] * 3
    assert joined.map_context["gnss_fixes"] == 80  # B's track (the junk fix is dropped, not fatal)
    # only live segments are announced: A alone, then AB is superseded by ABC in the outbox order
    announced = [o.segment_id for o in env.db.read_outbox(0, 100)]
    assert announced == [a.segment_ids[0], b.joined[0], c.joined[0]]
    # append-only processed outputs, with a superseded marker added to every replaced segment
    keys = env.store.list("processed/2023-11-14")
    assert f"processed/2023-11-14/{joined.segment_id}/index.json" in keys
    index = json.loads(env.store.read_bytes(f"processed/2023-11-14/{joined.segment_id}/index.json"))
    assert index["parent_segment_ids"] == list(leaves) and len(index["streams"]) == 13
    marker = json.loads(env.store.read_bytes(f"processed/2023-11-14/{b.joined[0]}/superseded.json"))
    assert marker["superseded_by"] == joined.segment_id
    assert Segment.decode(env.store.read_bytes(f"processed/2023-11-14/{a.segment_ids[0]}/segment.msgpack")) \
        .segment_id == a.segment_ids[0]


def test_arrival_order_does_not_change_the_joined_segment(tmp_path: Path, snaps: dict[str, tuple[Path, str]]) -> None:
    ids = []
    for order in ("ABC", "CAB"):
        db = open_db("sqlite", sqlite_path=str(tmp_path / f"{order}.db"))
        e = Env(db, tmp_path / order)
        for k in order:
            e.ingest(snaps[k])
        ids.append([s.segment_id for s in e.live()])
        db.close()
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_ingesting_the_same_snapshot_twice_adds_nothing(env: Env, snaps: dict[str, tuple[Path, str]]) -> None:
    first = [env.ingest(snaps[k]) for k in "AB"]
    counts = {t: env.count(t) for t in ("segments", "outbox", "segment_labels")}
    keys = env.store.list("processed/2023-11-14")
    again = env.ingest(snaps["A"])
    assert again.segment_ids == first[0].segment_ids and again.new_segment_ids == () and again.joined is None
    assert {t: env.count(t) for t in counts} == counts and env.store.list("processed/2023-11-14") == keys
    assert [s.segment_id for s in env.live()] == [first[1].joined[0]]  # type: ignore[index]


def test_gaps_over_the_limit_and_long_snapshots_stay_apart(env: Env, snaps: dict[str, tuple[Path, str]]) -> None:
    c, d, long = env.ingest(snaps["C"]), env.ingest(snaps["D"]), env.ingest(snaps["L"])
    assert c.joined is d.joined is long.joined is None  # D starts 5 s after C ends; L is 25 s
    assert len(env.live()) == 3


def test_calibration_valid_at_segment_start_is_attached_or_counted_missing(
        env: Env, snaps: dict[str, tuple[Path, str]]) -> None:
    env.registry.add(bundle("v1", T0_NS // NS - 100, vehicle="car-1"))
    env.registry.add(bundle("v2", T0_NS // NS + 50, vehicle="car-1"))  # recalibrated before L
    a = env.ingest(snaps["A"])
    long = env.ingest(snaps["L"])
    seg_a = Segment.decode(env.db.get_segment(a.segment_ids[0]).record)  # type: ignore[union-attr]
    seg_l = Segment.decode(env.db.get_segment(long.segment_ids[0]).record)  # type: ignore[union-attr]
    assert seg_a.calibration is not None and seg_a.calibration.version == "v1"
    assert seg_l.calibration is not None and seg_l.calibration.version == "v2"
    assert env.missing == []
    env.ingest(snaps["G"], vehicle="car-2")  # a vehicle without calibration: stored with None, counted
    assert env.missing == ["vehicle_has_none"]
    seg = env.live("car-2")[0]
    assert seg.calibration is None
    assert seg.map_context["gnss_bbox_deg"] == pytest.approx([48.1, 11.5, 48.1 + 79e-4, 11.5 + 79 * 2e-4])
    assert seg.map_context["center_lat_deg"] == pytest.approx(48.1 + 79e-4 / 2)
