"""Scenario specs: the dataclasses, their TOML/JSON files, variations and the ODD taxonomy."""

from simulator_harness.scenario.errors import ScenarioError
from simulator_harness.scenario.io import (
    dumps_json,
    dumps_toml,
    from_dict,
    load,
    loads_json,
    loads_toml,
    save,
    to_dict,
)
from simulator_harness.scenario.spec import (
    EVENT_PARAMS,
    Actor,
    ActorKind,
    Dist,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    RoadSpec,
    RoadType,
    ScenarioSpec,
    TimeOfDay,
    Variation,
    Weather,
)
from simulator_harness.scenario.taxonomy import AXES, taxonomy_cell
from simulator_harness.scenario.variation import apply, resolve

__all__ = [
    "AXES",
    "EVENT_PARAMS",
    "Actor",
    "ActorKind",
    "Dist",
    "EgoSpec",
    "Event",
    "EventKind",
    "Intent",
    "RoadSpec",
    "RoadType",
    "ScenarioError",
    "ScenarioSpec",
    "TimeOfDay",
    "Variation",
    "Weather",
    "apply",
    "dumps_json",
    "dumps_toml",
    "from_dict",
    "load",
    "loads_json",
    "loads_toml",
    "resolve",
    "save",
    "taxonomy_cell",
    "to_dict",
]
