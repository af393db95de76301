"""Traffic density and agent types from real AV2 tracks and real YOLOX detections."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.feather as feather
import pytest
from PIL import Image

from downstream.enrich.records import Detected, ScoredFrame, Tracks
from downstream.enrich.tags import Tag, TagSource
from downstream.enrich.traffic import (
    TRACK_RADIUS_M,
    agent_kind,
    traffic_from_detections,
    traffic_from_tracks,
    traffic_tags,
)
from simulator_harness.scenario.spec import ActorKind
from tests.downstream.enrich.real_data import AV2_7FAB, AV2_ADCF, KITTI, NUSC, av2_tracks
from vehicle.inference.model import Detector, DetectorConfig


@pytest.mark.parametrize("log", [AV2_7FAB, AV2_ADCF])
def test_real_av2_tracks(log: object) -> None:
    tags = traffic_from_tracks(av2_tracks(log))  # type: ignore[arg-type]
    # Oracle straight from the annotation table: vehicles within the radius per timestamp.
    d = feather.read_table(log / "annotations.feather").to_pydict()  # type: ignore[operator]
    vehicles = Counter(t for t, c, x, y in zip(d["timestamp_ns"], d["category"], d["tx_m"], d["ty_m"], strict=True)
                       if agent_kind(c) in (ActorKind.CAR, ActorKind.TRUCK) and np.hypot(x, y) <= TRACK_RADIUS_M)
    median = float(np.median([vehicles.get(t, 0) for t in sorted(set(d["timestamp_ns"]))]))
    assert median > 15 and tags[0] == Tag("traffic", "dense", TagSource.TRACKS, 0.8)
    assert {t.value for t in tags[1:]} == {"car", "truck", "pedestrian"}  # no BICYCLIST or MOTORCYCLIST labels
    assert not {c for c in d["category"] if c in ("BICYCLIST", "MOTORCYCLIST", "WHEELED_RIDER")}


def test_real_yolox_detections() -> None:
    """The vehicle's own detector on real frames: KITTI 000000 (one labelled pedestrian, no vehicle)
    and nuScenes CAM_FRONT (parked cars and a truck)."""
    detector = Detector(DetectorConfig(provider="cpu", intra_op_threads=1))

    def frame(path: object, t_ns: int) -> ScoredFrame:
        bgr = np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1].copy()  # type: ignore[arg-type]
        return ScoredFrame(t_ns, tuple(Detected(d.class_name, d.score, d.box_xyxy_px)
                                       for d in detector.detect(bgr).detections))

    kitti = frame(KITTI / "image_2" / "000000.png", 0)
    front = frame(next(NUSC.glob("*CAM_FRONT__*.jpg")), 1)
    assert traffic_from_detections([kitti]) == (Tag("traffic", "empty", TagSource.DETECTIONS, 0.4),)
    vehicles = [d for d in front.detections if agent_kind(d.class_name) in (ActorKind.CAR, ActorKind.TRUCK)
                and d.score >= 0.3]
    assert 4 <= len(vehicles) <= 7
    assert traffic_from_detections([front])[0].value == "moderate"
    # One frame is not enough to name an agent (2 frames needed); the person shows in both KITTI copies.
    both = traffic_from_detections([kitti, kitti])
    person = [t for t in both if t.name == "agents"]
    assert [t.value for t in person] == ["pedestrian"] and person[0].confidence == pytest.approx(0.81, abs=0.02)


def test_density_bins_and_agent_rules_on_detections() -> None:
    def frames(n_cars: int, extra: tuple[Detected, ...] = (), count: int = 6) -> list[ScoredFrame]:
        cars = tuple(Detected("car", 0.9) for _ in range(n_cars))
        return [ScoredFrame(i, cars + extra) for i in range(count)]

    assert traffic_from_detections(frames(3))[0] == Tag("traffic", "light", TagSource.DETECTIONS, 0.6)
    assert traffic_from_detections(frames(4))[0].value == "moderate"
    assert traffic_from_detections(frames(8))[0].value == "dense"
    assert traffic_from_detections(frames(8, count=3))[0].confidence == 0.4
    faint = frames(8, (Detected("bus", 0.2), Detected("bicycle", 0.95)))
    tags = traffic_from_detections(faint)
    assert [t.encode() for t in tags] == ["traffic:dense", "agents:car", "agents:cyclist"]  # the faint bus is not
    assert agent_kind("dog") is None and agent_kind("BICYCLE") is None and agent_kind("bus") is ActorKind.TRUCK
    assert traffic_from_detections([]) == ()


def test_tracks_win_over_detections_when_there_are_any() -> None:
    t = np.array([0, 100], dtype=np.int64)
    one = Tracks(("a",), ("PEDESTRIAN",), t, np.full((1, 2), 5.0), np.zeros((1, 2)), np.zeros((1, 2)),
                 np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2), bool))
    frames = [ScoredFrame(i, (Detected("car", 0.9),) * 9) for i in range(5)]
    assert traffic_tags(frames, one)[0] == Tag("traffic", "empty", TagSource.TRACKS, 0.8)
    empty = Tracks((), (), t, np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)),
                   np.zeros((0, 2)), np.zeros((0, 2), bool))
    assert traffic_tags(frames, empty)[0].source is TagSource.DETECTIONS
