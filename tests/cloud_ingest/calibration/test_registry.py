"""The calibration registry in the metadata DB (SQLite file and real PostgreSQL): versions, validity
ranges, conflicts, metrics."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from cloud_ingest.calibration.registry import CalibrationMetrics, CalibrationRegistry, CalibrationStore
from cloud_ingest.config import CloudConfig
from cloud_ingest.errors import CalibrationConflict, CalibrationError, CalibrationNotFound, InvalidCalibration
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics
from tests.cloud_ingest.conftest import open_config_db

S = 1_000_000_000


def bundle(version: str, start_s: int, end_s: int | None = None, vehicle: str = "veh-1",
           fx: float = 700.0) -> CalibrationBundle:
    return CalibrationBundle(
        vehicle_id=vehicle, version=version, valid_from_ns=start_s * S,
        valid_to_ns=None if end_s is None else end_s * S,
        cameras=(CameraIntrinsics("cam_front", 1920, 1080, fx, fx, 960.0, 540.0, "plumb_bob",
                                  (-0.1, 0.01, 0.0, 0.0, 0.0)),),
        extrinsics=(SensorExtrinsics("cam_front", (0.5, -0.5, 0.5, -0.5), (1.5, 0.0, 1.4)),
                    SensorExtrinsics("lidar_top", (1.0, 0.0, 0.0, 0.0), (0.9, 0.0, 1.8))),
        time_offsets_ns={"cam_front": -12_000_000},
    )


@pytest.fixture
def db(cloud_config: CloudConfig) -> Iterator[SQLMetadataDB]:
    d = open_config_db(cloud_config)
    yield d
    d.close()


@pytest.fixture
def registry(db: SQLMetadataDB) -> CalibrationRegistry:
    return CalibrationRegistry(db)


def rejected(reg: CalibrationRegistry, reason: str) -> float:
    return reg.metrics.registry.get_sample_value("avdata_calibration_rejected_total", {"reason": reason}) or 0.0


def test_valid_at_picks_the_version_whose_range_holds_the_time(registry: CalibrationRegistry) -> None:
    store: CalibrationStore = registry
    store.add(bundle("v1", 100, 200))
    store.add(bundle("v2", 200, 300, fx=710.0))
    assert store.valid_at("veh-1", 100 * S).version == "v1"
    assert store.valid_at("veh-1", 200 * S - 1).version == "v1"
    got = store.valid_at("veh-1", 200 * S)  # ranges are half-open: the boundary belongs to v2
    assert got.version == "v2" and got.cameras[0].fx == 710.0
    assert got == bundle("v2", 200, 300, fx=710.0)  # full round trip through the stored envelope
    with pytest.raises(CalibrationNotFound, match=r"veh-1.*t_ns=300000000000.*v1 \[100000000000"):
        store.valid_at("veh-1", 300 * S)
    with pytest.raises(CalibrationNotFound, match="versions: none"):
        store.valid_at("other-vehicle", 150 * S)
    samples = registry.metrics.registry
    assert samples.get_sample_value("avdata_calibration_lookups_total", {"result": "miss"}) == 2
    assert samples.get_sample_value("avdata_calibration_lookups_total", {"result": "hit"}) == 3


def test_a_newer_version_closes_the_open_ended_one(registry: CalibrationRegistry) -> None:
    registry.add(bundle("v1", 100))
    registry.add(bundle("v2", 250))
    versions = registry.versions("veh-1")
    assert [(b.version, b.valid_from_ns, b.valid_to_ns) for b in versions] == [
        ("v1", 100 * S, 250 * S), ("v2", 250 * S, None)]
    assert registry.valid_at("veh-1", 249 * S).version == "v1"
    assert registry.valid_at("veh-1", 10**6 * S).version == "v2"


def test_overlaps_are_rejected_and_change_nothing(registry: CalibrationRegistry) -> None:
    registry.add(bundle("v1", 100, 200))
    registry.add(bundle("v3", 300))
    cases = [bundle("v2", 150, 250), bundle("v2", 50, 101), bundle("v2", 199), bundle("v2", 250, 301),
             bundle("v2", 300, 400), bundle("v2", 100, 200)]
    for case in cases:
        with pytest.raises(CalibrationConflict, match="overlaps version"):
            registry.add(case)
    assert rejected(registry, "calibration_conflict") == len(cases)
    assert [(b.version, b.valid_to_ns) for b in registry.versions("veh-1")] == [("v1", 200 * S), ("v3", None)]
    registry.add(bundle("v2", 200, 300))  # exactly fills the gap
    assert registry.valid_at("veh-1", 250 * S).version == "v2"


def test_a_version_before_the_open_one_must_not_reach_into_it(registry: CalibrationRegistry) -> None:
    registry.add(bundle("v2", 200))
    with pytest.raises(CalibrationConflict, match="overlaps version 'v2'"):
        registry.add(bundle("v1", 100))  # open-ended, older: would overlap v2 forever
    registry.add(bundle("v1", 100, 200))
    assert registry.valid_at("veh-1", 150 * S).version == "v1"


def test_vehicles_are_independent(registry: CalibrationRegistry) -> None:
    registry.add(bundle("v1", 100, vehicle="veh-1"))
    registry.add(bundle("v1", 100, vehicle="veh-2", fx=800.0))
    assert registry.valid_at("veh-2", 150 * S).cameras[0].fx == 800.0
    assert registry.valid_at("veh-1", 150 * S).cameras[0].fx == 700.0


def test_retrying_the_same_add_is_a_no_op_but_reusing_a_name_is_not(registry: CalibrationRegistry) -> None:
    registry.add(bundle("v1", 100))
    registry.add(bundle("v2", 200))  # closes v1
    assert registry.add(bundle("v1", 100)).valid_to_ns == 200 * S  # the retry sees the stored state
    assert len(registry.versions("veh-1")) == 2
    with pytest.raises(CalibrationConflict, match="already has a calibration version 'v1'"):
        registry.add(bundle("v1", 100, fx=701.0))


def test_invalid_bundles_are_refused_with_the_reason(registry: CalibrationRegistry) -> None:
    good = bundle("v1", 100)
    bad = [
        (dataclasses.replace(good, valid_to_ns=100 * S), "must be after"),
        (dataclasses.replace(good, vehicle_id="../etc"), "vehicle_id"),
        (dataclasses.replace(good, extrinsics=(SensorExtrinsics("lidar", (1.0, 1.0, 0.0, 0.0), (0, 0, 0)),)),
         "not a unit quaternion"),
        (dataclasses.replace(good, cameras=good.cameras * 2), "listed twice"),
        (dataclasses.replace(good, cameras=(dataclasses.replace(good.cameras[0], fx=-1.0),)), "fx, fy > 0"),
        (dataclasses.replace(good, cameras=(dataclasses.replace(good.cameras[0], distortion_model="kb4"),)),
         "not supported"),
    ]
    for case, message in bad:
        with pytest.raises(InvalidCalibration, match=message):
            registry.add(case)
    assert rejected(registry, "calibration_invalid") == len(bad)
    assert registry.versions("veh-1") == []
    with pytest.raises(CalibrationError, match="integer"):
        registry.valid_at("veh-1", 1.5)  # type: ignore[arg-type]


def test_state_survives_reopening(cloud_config: CloudConfig) -> None:
    first = open_config_db(cloud_config)
    CalibrationRegistry(first).add(bundle("v1", 100))
    first.close()
    again = open_config_db(cloud_config)
    try:
        reg = CalibrationRegistry(again)
        assert [b.version for b in reg.versions("veh-1")] == ["v1"]
        assert reg.valid_at("veh-1", 300 * S).valid_to_ns is None
    finally:
        again.close()


def test_two_connections_see_each_others_versions(cloud_config: CloudConfig) -> None:
    a, b = open_config_db(cloud_config), open_config_db(cloud_config)
    reg_a = CalibrationRegistry(a, CalibrationMetrics())
    reg_b = CalibrationRegistry(b, CalibrationMetrics())
    reg_a.add(bundle("v1", 100))
    with pytest.raises(CalibrationConflict):
        reg_b.add(bundle("other", 50))
    reg_b.add(bundle("v2", 200))
    assert reg_a.valid_at("veh-1", 150 * S).valid_to_ns == 200 * S
    a.close()
    b.close()


def test_concurrent_overlapping_adds_have_one_winner(cloud_config: CloudConfig) -> None:
    dbs = [open_config_db(cloud_config) for _ in range(4)]
    barrier = threading.Barrier(len(dbs))
    won: list[str] = []

    def add(i: int) -> None:
        barrier.wait()
        try:
            CalibrationRegistry(dbs[i]).add(bundle(f"v{i}", 100, 200))
            won.append(f"v{i}")
        except CalibrationConflict:
            pass

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(dbs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert [b.version for b in CalibrationRegistry(dbs[0]).versions("veh-1")] == won
    for d in dbs:
        d.close()
