"""Scenario files: TOML and JSON round trips, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator_harness.scenario import (
    Actor,
    ActorKind,
    Dist,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    RoadType,
    ScenarioError,
    ScenarioSpec,
    TimeOfDay,
    Variation,
    dumps_toml,
    load,
    loads_json,
    loads_toml,
    save,
)


def rich_spec() -> ScenarioSpec:
    return ScenarioSpec(
        name="runner", description='red light "runner" at dusk', time_of_day=TimeOfDay.DUSK,
        road=RoadSpec(kind=RoadType.INTERSECTION, lanes=2, cross_lanes=1),
        actors=(Actor("agent_1", lane=2, s_m=60.0, speed_mps=12.0, intent=Intent.KEEP_LANE),
                Actor("walker", kind=ActorKind.PEDESTRIAN, lane=0, s_m=200.0, d_m=-3.0, intent=Intent.WAIT,
                      desired_speed_mps=1.2)),
        events=(Event(EventKind.RED_LIGHT_RUNNER, "agent_1", 1.5, {"speed_mps": 14.0}),
                Event(EventKind.JAYWALK, "walker", 3.0)),
        variations=(Variation("events[0].t_s", 0.5, 2.5, Dist.NORMAL),), duration_s=12.0)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip_through_a_file(tmp_path: Path, suffix: str) -> None:
    spec = rich_spec()
    path = tmp_path / f"runner{suffix}"
    save(spec, path)
    assert load(path) == spec
    assert not list(tmp_path.glob("*.tmp"))


def test_toml_is_readable_and_written_by_section() -> None:
    text = dumps_toml(rich_spec())
    assert "[road]" in text and "[[actors]]" in text and "params = { speed_mps = 14.0 }" in text
    assert loads_toml(text) == rich_spec()


def test_bad_value_names_the_key() -> None:
    text = dumps_toml(rich_spec()).replace("s_m = 60.0", 's_m = "sixty"')
    with pytest.raises(ScenarioError, match=r"actors\[0\]\.s_m: expected a number, got 'sixty'"):
        loads_toml(text, "runner.toml")


def test_unknown_key_and_unknown_enum_are_rejected() -> None:
    with pytest.raises(ScenarioError, match=r"unknown key 'road\.lane_count'"):
        loads_json('{"name": "x", "road": {"lane_count": 3}}')
    with pytest.raises(ScenarioError, match=r"weather: 'hail' is not a valid Weather"):
        loads_json('{"name": "x", "weather": "hail"}')


def test_cross_field_error_survives_the_loader() -> None:
    with pytest.raises(ScenarioError, match=r"events\[0\]\.actor: 'ghost' is not an actor"):
        loads_json('{"name": "x", "events": [{"kind": "cut_in", "actor": "ghost", "t_s": 1.0}]}')


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        loads_toml("name = ")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        loads_json("{")
    with pytest.raises(ScenarioError, match=r"end in \.toml or \.json"):
        load(tmp_path / "x.yaml")
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "missing.toml")
