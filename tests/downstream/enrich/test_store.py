"""The enrichment tables on both metadata back-ends: rows once per (segment, version), float32 blobs
back bit for bit, tags filterable in SQL, the latest version by a view, failures cleared by a success,
and a version's settings pinned by their fingerprint."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from downstream.enrich.errors import VersionConflict
from downstream.enrich.inputs import Problem
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.store import (
    failure_effect,
    failures,
    get_enrichment,
    migrate_enrich,
    register_version,
    status,
    write_effect,
)
from downstream.enrich.tags import Tag, TagSource
from tests.cloud_ingest.conftest import open_config_db


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    d.migrate()
    migrate_enrich(d)
    yield d
    d.close()


def unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def result(segment_id: str, version: int = 1, night: bool = False) -> EnrichmentResult:
    tags = (Tag("lighting", "night" if night else "day", TagSource.SOLAR, 0.9),
            Tag("agents", "pedestrian", TagSource.DETECTIONS, 0.4), Tag("road_type", "urban", TagSource.MAP, 0.8))
    return EnrichmentResult(segment_id, version, "avdata.downstream.enrich/1", "fp", "car-1", 10, 20, "REAL",
                            unit(512, version), 7, "mean_of_unit_vectors:yolox_nano", unit(256, version + 9), 15,
                            None, "", tags, (), f"v{version} description", "template/1", None,
                            (Problem("no_camera", "none"),), 99)


def apply(db: SQLMetadataDB, effect: object) -> None:
    with db.transaction() as tx:
        effect(tx)  # type: ignore[operator]


def test_rows_once_blobs_exact_and_tags_filterable(db: SQLMetadataDB) -> None:
    r = result("s1")
    apply(db, write_effect(r, "processed/k/v1.json"))
    apply(db, write_effect(dataclasses.replace(r, description="again"), "processed/k/v1.json"))  # a no-op
    apply(db, write_effect(result("s2", night=True), "processed/k2/v1.json"))
    got = get_enrichment(db, "s1")
    assert got is not None and got.description == "v1 description" and got.visual_frames == 7
    assert got.visual_embedding is not None and r.visual_embedding is not None
    assert np.array_equal(got.visual_embedding, r.visual_embedding)
    assert got.bev_embedding is not None and got.bev_embedding.dtype == np.float32 and got.bev_embedding.shape == (256,)
    assert got.image_text_embedding is None and got.problems == [{"reason": "no_camera", "detail": "none"}]
    assert ("agents", "pedestrian", "detections", 0.4) in got.tags and len(got.tags) == 3
    assert got.map_summary == {"source": "none", "covered": False} and not got.map_covered
    with db.transaction() as tx:
        night = tx.run("SELECT e.segment_id FROM enrichment_latest e JOIN enrichment_tags t ON "
                       "t.segment_id = e.segment_id AND t.enricher_version = e.enricher_version "
                       "WHERE t.name = ? AND t.value = ? AND t.confidence >= ?", ("lighting", "night", 0.5))
        assert night == [("s2",)]
        assert tx.run("SELECT COUNT(*) FROM enrichment_tags WHERE segment_id = 's1'") == [(3,)]


def test_latest_version_and_old_versions_kept(db: SQLMetadataDB) -> None:
    for v in (1, 2):
        apply(db, write_effect(result("s1", v), f"processed/k/v{v}.json"))
    apply(db, write_effect(result("s9", 1), "processed/k9/v1.json"))
    latest, first = get_enrichment(db, "s1"), get_enrichment(db, "s1", 1)
    assert latest is not None and latest.enricher_version == 2 and latest.description == "v2 description"
    assert first is not None and first.output_key == "processed/k/v1.json"
    with db.transaction() as tx:
        assert sorted(tx.run("SELECT segment_id, enricher_version FROM enrichment_latest")) == [("s1", 2), ("s9", 1)]


def test_a_failure_is_recorded_once_and_cleared_by_a_success(db: SQLMetadataDB) -> None:
    apply(db, failure_effect("s1", 1, "processed_missing", "calibrated.mcap not there"))
    apply(db, failure_effect("s1", 1, "other", "later"))
    apply(db, failure_effect("s2", 1, "snapshot_unreadable", "truncated"))
    assert failures(db, 1) == [("s1", "processed_missing", "calibrated.mcap not there"),
                               ("s2", "snapshot_unreadable", "truncated")]
    apply(db, write_effect(result("s1"), "processed/k/v1.json"))
    assert [f[0] for f in failures(db, 1)] == ["s2"]
    register_version(db, 1, "e", "fp", {})
    doc = status(db)
    assert doc["versions"] == [{"version": 1, "enricher": "e", "fingerprint": "fp", "enriched": 1,
                                "failed": {"snapshot_unreadable": 1}}]


def test_a_version_runs_with_one_set_of_settings(db: SQLMetadataDB) -> None:
    register_version(db, 1, "e", "aaaa", {"map_radius_m": 50})
    register_version(db, 1, "e", "aaaa", {"map_radius_m": 50})  # the same settings again: fine
    register_version(db, 2, "e", "bbbb", {"map_radius_m": 80})
    with pytest.raises(VersionConflict, match="version 1 was run with other settings"):
        register_version(db, 1, "e", "bbbb", {"map_radius_m": 80})
