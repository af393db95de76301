"""Scenario spec validation, variations and the ODD taxonomy cell."""

from __future__ import annotations

import pytest

from simulator_harness.scenario import (
    AXES,
    Actor,
    ActorKind,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    RoadType,
    ScenarioError,
    ScenarioSpec,
    Variation,
    Weather,
    apply,
    resolve,
    taxonomy_cell,
)


def cut_in_spec() -> ScenarioSpec:
    return ScenarioSpec(
        name="cut", ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0),
        actors=(Actor("agent_3", lane=1, s_m=70.0, speed_mps=18.0),),
        events=(Event(EventKind.CUT_IN, "agent_3", 2.0),),
        variations=(Variation("events[0].t_s", 1.0, 3.0),))


def test_event_naming_an_unknown_actor_is_rejected_with_the_key() -> None:
    with pytest.raises(ValueError, match=r"events\[0\]\.actor: 'agent_9' is not an actor"):
        ScenarioSpec(name="x", actors=(Actor("agent_3", lane=1),), events=(Event(EventKind.CUT_IN, "agent_9", 1.0),))


def test_event_parameter_typo_is_rejected_with_the_key() -> None:
    with pytest.raises(ValueError, match=r"events\[0\]\.params\.decel: not a parameter"):
        ScenarioSpec(name="x", actors=(Actor("a", lane=0, s_m=90.0),),
                     events=(Event(EventKind.LEAD_HARD_BRAKE, "a", 1.0, {"decel": 6.0}),))


def test_event_kind_must_fit_the_actor_kind() -> None:
    with pytest.raises(ValueError, match="jaywalk needs a pedestrian"):
        ScenarioSpec(name="x", actors=(Actor("a", lane=1),), events=(Event(EventKind.JAYWALK, "a", 1.0),))


def test_red_light_runner_needs_a_crossing_lane() -> None:
    with pytest.raises(ValueError, match="red_light_runner needs an intersection"):
        ScenarioSpec(name="x", actors=(Actor("a", lane=1),), events=(Event(EventKind.RED_LIGHT_RUNNER, "a", 1.0),))


def test_intent_must_fit_the_kind_and_names_are_unique() -> None:
    with pytest.raises(ValueError, match="intent"):
        Actor("p", kind=ActorKind.PEDESTRIAN, intent=Intent.CRUISE)
    with pytest.raises(ValueError, match=r"actors\[1\]\.name: 'a' is used twice"):
        ScenarioSpec(name="x", actors=(Actor("a", lane=0), Actor("a", lane=1)))


def test_event_after_the_end_and_bad_variation_key_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"events\[0\]\.t_s: 12.0 is outside"):
        ScenarioSpec(name="x", actors=(Actor("a", lane=1),), events=(Event(EventKind.CUT_IN, "a", 12.0),))
    with pytest.raises(ValueError, match=r"variations\[0\]\.key"):
        ScenarioSpec(name="x", variations=(Variation("actors.nobody.speed_mps", 1.0, 2.0),))


def test_resolve_and_apply_variations() -> None:
    spec = cut_in_spec()
    assert resolve(spec, "events[0].t_s") == 2.0
    assert resolve(spec, "events[0].params.lateral_omega_radps") == 1.5  # the kind's default
    moved = apply(spec, {"events[0].t_s": 2.7, "actors.agent_3.speed_mps": 15.0,
                         "events[0].params.lateral_omega_radps": 2.5})
    assert moved.events[0].t_s == 2.7 and moved.actors[0].speed_mps == 15.0
    assert moved.events[0].params == {"lateral_omega_radps": 2.5}
    assert spec.events[0].t_s == 2.0  # the seed is untouched
    with pytest.raises(ScenarioError, match="outside the scenario"):
        apply(spec, {"events[0].t_s": 11.0})
    with pytest.raises(ScenarioError, match="no actor named"):
        apply(spec, {"actors.ghost.s_m": 1.0})


def test_taxonomy_cell_covers_every_axis() -> None:
    assert len(AXES) == 5
    assert taxonomy_cell(cut_in_spec()) == ("straight_multilane", "cut_in", "car", "clear_day", "clear")
    occluded = ScenarioSpec(
        name="occ", road=RoadSpec(kind=RoadType.INTERSECTION), weather=Weather.RAIN,
        actors=(Actor("kid", kind=ActorKind.PEDESTRIAN, s_m=90.0, d_m=-3.0, intent=Intent.WAIT),
                Actor("van", kind=ActorKind.TRUCK, s_m=80.0, d_m=-3.0, intent=Intent.PARKED)),
        events=(Event(EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT, "kid", 1.0),))
    assert taxonomy_cell(occluded) == ("signalised_intersection", "vru_crossing", "truck+pedestrian",
                                       "rain_day", "occluded")
    assert taxonomy_cell(ScenarioSpec(name="alone"))[1:3] == ("lane_following", "none")
