"""Descriptions: exact template output for given facts, a pluggable describer, and one real segment."""

from __future__ import annotations

import numpy as np

from downstream.enrich.describe import Describer, SceneFacts, TemplateDescriber
from downstream.enrich.events import Event, event_tags, hard_brakes
from downstream.enrich.lighting import lighting_tags
from downstream.enrich.records import EgoStates
from downstream.enrich.road import road_tags
from downstream.enrich.tags import Tag, TagSource, encode_tags
from shared.payloads import GnssFix, VehicleState, decode_small
from tests.downstream.enrich import real_data as rd
from vehicle.replay.comma2k19 import load_segment, segment_messages

S, M, TR = TagSource.SOLAR, TagSource.MAP, TagSource.TRACKS


def say(tags: list[Tag], events: list[Event] = ()) -> str:  # type: ignore[assignment]
    return TemplateDescriber().describe(SceneFacts(tuple(tags), tuple(events)))


def test_the_night_highway_hard_brake() -> None:
    tags = [Tag("lighting", "night", S, 1.0), Tag("road_type", "highway", M, 0.9), Tag("traffic", "dense", TR, 0.8),
            Tag("agents", "car", TR, 0.9)]
    brake = Event("hard_brake", 5, TagSource.VEHICLE_STATE, 0.9, speed_mps=31 / 3.6, decel_mps2=6.2, agent="truck")
    assert say(tags, [brake]) == "night, highway, dense traffic, hard brake at 31 km/h behind a truck"
    with_trucks = [*tags, Tag("agents", "truck", TR, 0.9)]
    assert say(with_trucks, [brake]) == "night, highway, dense traffic, with trucks, hard brake at 31 km/h behind a truck"


def test_dawn_at_an_urban_intersection_with_a_cut_in() -> None:
    tags = [Tag("lighting", "dusk", S, 0.8), Tag("time_of_day", "morning", S, 0.8), Tag("road_type", "urban", M, 0.8),
            Tag("road_geometry", "intersection", M, 0.7), Tag("traffic", "moderate", TR, 0.8),
            Tag("agents", "cyclist", TR, 0.9), Tag("agents", "pedestrian", TR, 0.9)]
    cut = Event("cut_in", 9, TR, 0.7, gap_m=12.4, agent="car:left")
    assert say(tags, [cut]) == ("dawn, urban intersection, moderate traffic, with pedestrians and cyclists, "
                                "cut-in by a car from the left 12 m ahead")


def test_triggers_without_an_explaining_event_and_a_failed_light_check() -> None:
    tags = [Tag("lighting", "day", S, 0.5), Tag("lighting_check", "disagree", TagSource.IMAGE, 0.6),
            Tag("time_of_day", "afternoon", S, 1.0)]
    events = [Event("swerve", 30, TagSource.TRIGGER, 1.0, score=4.5), Event("ood", 10, TagSource.OOD, 0.75, score=4.25),
              Event("ood", 11, TagSource.TRIGGER, 1.0, score=4.25),  # explained by the detected anomaly
              Event("hard_brake", 20, TagSource.TRIGGER, 1.0)]  # no hard brake in the states: say the trigger
    assert say(tags, events) == "day (camera disagrees), unusual scene (OOD 4.2), hard-brake trigger, swerve trigger"


def test_low_confidence_claims_stay_out() -> None:
    tags = [Tag("road_type", "urban", TagSource.SPEED_PROFILE, 0.4), Tag("traffic", "light", TagSource.DETECTIONS, 0.4)]
    assert say(tags) == "no notable content"
    assert TemplateDescriber(min_confidence=0.3).describe(SceneFacts(tuple(tags))) == "urban road, light traffic"


def test_a_vlm_plugs_in_as_a_describer() -> None:
    class Captioner:
        name = "vlm/test"

        def describe(self, facts: SceneFacts) -> str:
            return f"{len(facts.images)} frames seen"

    assert isinstance(Captioner(), Describer) and isinstance(TemplateDescriber(), Describer)
    facts = SceneFacts((), images=(np.zeros((2, 2, 3), np.uint8),))
    assert Captioner().describe(facts) == "1 frames seen"


def test_a_real_segment_from_the_recorded_streams() -> None:
    """comma2k19 seg40 as the vehicle records it (gnss and vehicle_state messages on the epoch-like
    vehicle clock), through lighting, road and event components to tags and a description."""
    msgs = segment_messages(load_segment(rd.REAL / "comma2k19" / "seg40"))
    fixes = [(m.t_sensor_ns, decode_small(m.payload, GnssFix)) for m in msgs if m.topic == "gnss"]
    states = [m for m in msgs if m.topic == "vehicle_state"]
    ego = EgoStates.from_states([m.t_sensor_ns for m in states], [decode_small(m.payload, VehicleState) for m in states])
    tags = (*lighting_tags(np.array([t for t, _ in fixes]), np.array([f.lat_deg for _, f in fixes]),
                           np.array([f.lon_deg for _, f in fixes])),
            *road_tags(None, ego), *event_tags(hard_brakes(ego)))
    assert encode_tags(tags) == ("lighting:day", "time_of_day:morning")
    assert TemplateDescriber().describe(SceneFacts(tags)) == "day"
