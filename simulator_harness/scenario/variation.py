"""Named numeric parameters of a spec: read one (:func:`resolve`) or set several (:func:`apply`).

Key grammar::

    ego.<field>                      ego.speed_mps, ego.s_m, ego.desired_speed_mps
    actors.<name>.<field>            actors.agent_3.speed_mps, actors.agent_3.s_m, actors.agent_3.d_m
    events[<i>].t_s                  time of the i-th event, s
    events[<i>].params.<name>        an event parameter (defaults from ``EVENT_PARAMS``)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from simulator_harness.scenario.errors import ScenarioError

if TYPE_CHECKING:
    from simulator_harness.scenario.spec import ScenarioSpec

_EGO_FIELDS = ("lane", "s_m", "speed_mps", "desired_speed_mps")
_ACTOR_FIELDS = ("s_m", "d_m", "speed_mps", "desired_speed_mps")
_EVENT = re.compile(r"^events\[(\d+)\]\.(t_s|params\.([a-z0-9_]+))$")


def resolve(spec: ScenarioSpec, key: str) -> float:
    """The current value of ``key`` in ``spec``; ``KeyError``/``IndexError`` when it names nothing."""
    parts = key.split(".")
    if parts[0] == "ego" and len(parts) == 2 and parts[1] in _EGO_FIELDS:
        return float(getattr(spec.ego, parts[1]))
    if parts[0] == "actors" and len(parts) == 3 and parts[2] in _ACTOR_FIELDS:
        for actor in spec.actors:
            if actor.name == parts[1]:
                value = getattr(actor, parts[2])
                return float(value) if value is not None else float(spec.road.speed_limit_mps)
        raise KeyError(f"{key!r}: no actor named {parts[1]!r}")
    match = _EVENT.match(key)
    if match:
        index = int(match.group(1))
        if index >= len(spec.events):
            raise IndexError(f"{key!r}: the spec has {len(spec.events)} events")
        event = spec.events[index]
        if match.group(3) is None:
            return float(event.t_s)
        try:
            return event.param(match.group(3))
        except KeyError:
            raise KeyError(f"{key!r}: {event.kind} has no parameter {match.group(3)!r}") from None
    raise KeyError(f"{key!r} is not a variable parameter (see simulator_harness.scenario.variation)")


def apply(spec: ScenarioSpec, values: Mapping[str, float]) -> ScenarioSpec:
    """A copy of ``spec`` with each ``key`` set to its value; validation runs again on the result.

    Raises :class:`ScenarioError` naming the key when a key is unknown or the result is invalid.
    """
    ego = spec.ego
    actors = list(spec.actors)
    events = list(spec.events)
    for key, value in values.items():
        try:
            resolve(spec, key)
        except (KeyError, IndexError) as exc:
            raise ScenarioError(str(exc).strip("\"")) from None
        parts = key.split(".")
        if parts[0] == "ego":
            number: Any = round(value) if parts[1] == "lane" else float(value)
            ego = dataclasses.replace(ego, **{parts[1]: number})
        elif parts[0] == "actors":
            i = next(i for i, a in enumerate(actors) if a.name == parts[1])
            changes: dict[str, Any] = {parts[2]: float(value)}
            actors[i] = dataclasses.replace(actors[i], **changes)
        else:
            match = _EVENT.match(key)
            assert match is not None  # resolve() accepted it
            i = int(match.group(1))
            if match.group(3) is None:
                events[i] = dataclasses.replace(events[i], t_s=float(value))
            else:
                params = dict(events[i].params)
                params[match.group(3)] = float(value)
                events[i] = dataclasses.replace(events[i], params=params)
    try:
        return dataclasses.replace(spec, ego=ego, actors=tuple(actors), events=tuple(events))
    except ValueError as exc:
        raise ScenarioError(f"{spec.name}: {exc}") from exc
