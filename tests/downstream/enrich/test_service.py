"""The enrichment of one segment: read from a really ingested snapshot, computed, written once.

The drive (:mod:`tests.downstream.enrich.drive`) is real KITTI camera frames as H.265, the vehicle's
own YOLOX scores and embeddings, a real KITTI sweep calibrated by the ingest, GNSS on a lane of the
real Lanelet2 map of Karlsruhe. Plus real AV2 tracks for what only tracks give (cut-ins, track
traffic, boxes in the BEV), and the pooling maths.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from cloud_ingest.processing.keys import calibrated_key
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.objects.local import LocalObjectStore
from downstream.enrich.bev import BevProjector, bev_embedding
from downstream.enrich.errors import SegmentNotFound, SnapshotUnreadable
from downstream.enrich.inputs import SegmentInputs, Sweep
from downstream.enrich.maps.registry import MapSet, open_map
from downstream.enrich.outputs import output_key, write_output
from downstream.enrich.reader import SegmentReader
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.service import EnrichmentService, EnrichSettings
from downstream.enrich.visual import pool_embeddings
from shared.model_scores import decode_scores
from shared.segment import Provenance, Segment, Source
from shared.snapshot import SnapshotReader
from tests.downstream.enrich import real_data as rd
from tests.downstream.enrich.drive import DAY_T0_NS, Drive, ingest, register_kitti_calibration, write_drive


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Segment]]:
    """Two real drives ingested into SQLite and a local store: one on the map, one off it."""
    root = tmp_path_factory.mktemp("ingested")
    db = open_db("sqlite", sqlite_path=str(root / "meta.db"))
    store = LocalObjectStore(root / "store")
    register_kitti_calibration(db, "car-1")
    segs = []
    for i, on_map in enumerate((True, False)):
        path = root / f"s{i}.mcap"
        sha = write_drive(path, Drive(on_map=on_map), t0_ns=rd_t0(i))
        segs += ingest(db, store, root, path, sha)
    db.close()
    return root, segs


def rd_t0(i: int) -> int:
    return DAY_T0_NS + i * 100 * 1_000_000_000


def service() -> EnrichmentService:
    return EnrichmentService(EnrichSettings(fingerprint="test"), MapSet([open_map("lanelet2", rd.LANELET2_OSM)]))


def test_a_real_ingested_segment_gets_every_output(ingested: tuple[Path, list[Segment]]) -> None:
    root, (seg, _) = ingested
    store = LocalObjectStore(root / "store")
    inputs = SegmentReader(store).read(seg)
    assert inputs.problems == ()
    res = service().enrich(inputs, now_ns=1)

    # visual: the pooled unit mean of exactly the model/scores embeddings the snapshot holds
    raw = next(r.object_key for r in seg.other_streams if r.topic == "model/scores")
    with SnapshotReader(store.path(raw)) as reader:
        embs = np.stack([decode_scores(m.payload).embedding for _, m in reader.messages(["model/scores"])])
    assert res.visual_embedding is not None and res.visual_embedding.shape == (512,)
    assert res.visual_frames == embs.shape[0] == 40
    unit = embs / np.linalg.norm(embs, axis=1, keepdims=True)
    expected = unit.mean(axis=0) / np.linalg.norm(unit.mean(axis=0))
    assert np.allclose(res.visual_embedding, expected, atol=1e-6)
    assert res.visual_source == "mean_of_unit_vectors:yolox_nano"

    # BEV: of the motion-compensated sweep nearest the middle, read from processed/
    assert inputs.sweep is not None and inputs.sweep.object_key == calibrated_key(seg.segment_id, seg.start_ns)
    assert abs(inputs.sweep.t_ns - (seg.start_ns + seg.end_ns) // 2) <= 500_000_000
    assert res.bev_embedding is not None and res.bev_embedding.shape == (256,)
    assert np.array_equal(res.bev_embedding, bev_embedding(inputs.sweep.points, None, BevProjector()))

    tags = {t.encode(): t for t in res.tags}
    assert tags["lighting:day"].source.value == "solar" and "lighting_check:agree" in tags  # KITTI is daylight
    assert tags["road_type:urban"].source.value == "map"  # the Karlsruhe lane is road+urban
    assert tags["event:hard_brake"].source.value == "vehicle_state" and "trigger:hard_brake" in tags
    assert tags["anomaly:ood"].source.value == "ood"  # the rendered stretch is outside the KITTI reference
    assert {"agents:car", "agents:truck"} <= set(tags) and tags["agents:car"].source.value == "detections"
    assert all(0.0 <= t.confidence <= 1.0 for t in res.tags)
    assert res.description.startswith("day, urban road") and "hard brake at 29 km/h" in res.description
    assert res.map_context is not None and res.map_context.covered and res.map_context.source == "lanelet2"

    enriched = res.apply_to(seg)  # the seed schema's fields filled in, and the record still encodes
    back = Segment.decode(enriched.encode())
    assert back.visual_embedding is not None and np.array_equal(back.visual_embedding, res.visual_embedding)
    assert back.language_description == res.description and "road_type:urban" in back.tags
    assert back.map_context["enrichment"]["covered"] is True and "gnss_bbox_deg" in back.map_context


def test_off_the_map_the_context_is_the_gnss_box_marked_as_such(ingested: tuple[Path, list[Segment]]) -> None:
    root, (_, seg) = ingested
    res = service().enrich(SegmentReader(LocalObjectStore(root / "store")).read(seg))
    assert res.map_context is not None and not res.map_context.covered
    summary = res.map_summary()
    assert summary["source"] == "gnss_box" and summary["georeference"] == "none"
    assert summary["lat_min_deg"] == pytest.approx(0.5) and summary["lon_max_deg"] == pytest.approx(-29.99, abs=1e-6)
    assert not any(t.source.value == "map" for t in res.tags)
    assert "road_type:urban" not in {t.encode() for t in res.tags if t.confidence >= 0.5}


def test_the_document_round_trips_and_a_second_write_keeps_the_first(
        ingested: tuple[Path, list[Segment]], tmp_path: Path) -> None:
    root, (seg, _) = ingested
    store = LocalObjectStore(root / "store")
    res = service().enrich(SegmentReader(store).read(seg), now_ns=111)
    back = EnrichmentResult.from_body(json.loads(json.dumps(res.to_body())))
    assert back.to_body() == res.to_body()
    other = LocalObjectStore(tmp_path / "store")
    first, wrote = write_output(other, res)
    assert wrote and first is res
    again, wrote = write_output(other, dataclasses.replace(res, enriched_ns=222, description="changed"))
    assert not wrote and again.enriched_ns == 111 and again.description == res.description
    assert other.exists(output_key(seg.segment_id, seg.start_ns, 1))


def test_missing_and_damaged_inputs_are_typed(ingested: tuple[Path, list[Segment]], tmp_path: Path) -> None:
    root, (seg, _) = ingested
    db = open_db("sqlite", sqlite_path=str(tmp_path / "empty.db"))
    with pytest.raises(SegmentNotFound, match="not in the metadata DB"):
        SegmentReader(LocalObjectStore(tmp_path / "s"), db).segment(seg.segment_id)
    db.close()
    with pytest.raises(SegmentNotFound) as bad:
        SegmentReader(LocalObjectStore(tmp_path / "s")).segment(seg.segment_id, b"\x93junk")
    assert bad.value.reason == "record_malformed"
    store = LocalObjectStore(tmp_path / "store")  # the raw object truncated to half
    raw = seg.camera_frames[0].object_key
    data = LocalObjectStore(root / "store").read_bytes(raw)
    store.put_bytes(raw, data[: len(data) // 2])
    with pytest.raises(SnapshotUnreadable) as broken:
        SegmentReader(store).read(seg)
    assert broken.value.reason == "snapshot_unreadable"
    with pytest.raises(SnapshotUnreadable) as gone:
        SegmentReader(LocalObjectStore(tmp_path / "nothing")).read(seg)
    assert gone.value.reason == "object_missing"
    reader = SegmentReader(LocalObjectStore(root / "store"))
    assert reader.missing_processed(seg) == []
    assert SegmentReader(store).missing_processed(seg) == [calibrated_key(seg.segment_id, seg.start_ns)]


def bare_segment(start_ns: int, end_ns: int) -> Segment:
    return Segment("seg-av2", "av2-car", start_ns, end_ns, (), (), (), (), {}, None, (), None, None, "", (),
                   Source.REAL, Provenance((), (), "0", "m", "test", 0))


def test_real_av2_tracks_give_the_cut_in_track_traffic_and_boxes_in_the_bev() -> None:
    tracks = rd.av2_tracks(rd.AV2_ADCF)
    ego = rd.av2_ego(rd.AV2_ADCF, tracks.t_ns)
    t = rd.av2_sweep_times(rd.AV2_ADCF)[0]
    points = rd.av2_sweep(rd.AV2_ADCF, t)
    sweep = Sweep(t, "lidar/top", "processed/x", np.stack([points[c] for c in ("x", "y", "z", "intensity")],
                                                           axis=1).astype(np.float32))
    seg = bare_segment(int(tracks.t_ns[0]), int(tracks.t_ns[-1]))
    res = service().enrich(SegmentInputs(seg, ego=ego, sweep=sweep, tracks=tracks))
    tags = {t.encode(): t for t in res.tags}
    assert tags["event:cut_in"].source.value == "tracks"
    assert "cut-in by a truck from the right" in res.description
    assert tags["traffic:dense"].source.value == "tracks"  # 146 tracks around a Pittsburgh intersection
    assert tags["agents:pedestrian"].source.value == "tracks"
    without = service().enrich(SegmentInputs(seg, ego=ego, sweep=sweep))
    assert res.bev_embedding is not None and without.bev_embedding is not None
    assert float(res.bev_embedding @ without.bev_embedding) < 0.999  # the tracked boxes are in the raster
    reasons = {p.reason for p in without.problems}
    assert {"no_model_scores", "no_gnss"} <= reasons and res.visual_embedding is None


def test_pooling_is_the_renormalised_mean_of_unit_vectors() -> None:
    a = np.array([[3.0, 0.0], [0.0, 0.5], [np.nan, 1.0], [0.0, 0.0]])
    pooled = pool_embeddings(a)
    assert pooled is not None and np.allclose(pooled, [2 ** -0.5, 2 ** -0.5])  # lengths do not weigh; bad rows left out
    assert pool_embeddings(np.array([[1.0, 0.0], [-1.0, 0.0]])) is None
    assert pool_embeddings(np.zeros((0, 4))) is None
