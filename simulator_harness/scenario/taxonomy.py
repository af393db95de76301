"""The ODD taxonomy: which cell of road geometry × manoeuvre × agents × environment × occlusion
a scenario covers. Coverage counting and slicing key on :func:`taxonomy_cell`."""

from __future__ import annotations

from simulator_harness.scenario.spec import ActorKind, EventKind, Intent, RoadType, ScenarioSpec

#: The axes, in the order of the tuple :func:`taxonomy_cell` returns.
AXES = ("road_geometry", "manoeuvre", "agents", "environment", "occlusion")

_GEOMETRY = {RoadType.STRAIGHT: "straight_multilane", RoadType.INTERSECTION: "signalised_intersection"}
_MANOEUVRE = {
    EventKind.CUT_IN: "cut_in",
    EventKind.LEAD_HARD_BRAKE: "lead_braking",
    EventKind.JAYWALK: "vru_crossing",
    EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT: "vru_crossing",
    EventKind.RED_LIGHT_RUNNER: "crossing_traffic_violation",
}


def taxonomy_cell(spec: ScenarioSpec) -> tuple[str, ...]:
    """The spec's ODD cell, one label per axis in :data:`AXES` order.

    Manoeuvre comes from the first scheduled event (``lane_following`` without events, or
    ``vru_crossing`` when a pedestrian/cyclist crosses by intent); agents lists the kinds present
    besides the ego (``none`` when alone); environment is ``<weather>_<time of day>``; occlusion is
    ``occluded`` when an event is an occluded step-out or a parked vehicle stands in the scene.
    """
    if spec.events:
        manoeuvre = _MANOEUVRE[min(spec.events, key=lambda e: e.t_s).kind]
    elif any(a.intent is Intent.CROSS for a in spec.actors):
        manoeuvre = "vru_crossing"
    else:
        manoeuvre = "lane_following"
    kinds = sorted({a.kind.value for a in spec.actors}, key=[k.value for k in ActorKind].index)
    agents = "+".join(kinds) if kinds else "none"
    occluded = any(e.kind is EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT for e in spec.events) or any(
        a.intent is Intent.PARKED for a in spec.actors)
    return (_GEOMETRY[spec.road.kind], manoeuvre, agents, f"{spec.weather}_{spec.time_of_day}",
            "occluded" if occluded else "clear")
