"""Export scenarios to ASAM OpenSCENARIO XML 1.3 (``.xosc``) with ``xml.etree``.

The input is a small neutral description, :class:`XoscScenario` (actors with an initial lane
position or world pose and speed; timed lane-change, speed and trajectory events; time of day
and weather), so any scenario source can be converted to it; :func:`xosc_from_commonroad` does
so for an imported CommonRoad seed. :func:`to_xosc` is pure; :func:`write_xosc` writes the file.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from simulator_harness.errors import ScenarioExportError
from simulator_harness.seeds.commonroad import CommonRoadScenario
from simulator_harness.trajectory import require

EVENT_KINDS = ("lane_change", "speed", "follow_trajectory")
PRECIPITATION = ("dry", "rain", "snow")
CLOUD_COVER = tuple(f"{n}Oktas" for n in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                           "eight", "nine"))


@dataclass(frozen=True)
class XoscActor:
    """A vehicle: an OpenDRIVE lane position (``road_id``, ``lane_id``, ``s_m``) unless ``world_xyh``
    (x m, y m, heading rad) is given; initial ``speed_mps``; bounding box in metres."""

    name: str
    speed_mps: float
    road_id: str = "0"
    lane_id: int = -1
    s_m: float = 0.0
    world_xyh: tuple[float, float, float] | None = None
    length_m: float = 4.5
    width_m: float = 1.9
    height_m: float = 1.5

    def __post_init__(self) -> None:
        if not self.name or not math.isfinite(self.speed_mps) or self.speed_mps < 0.0:
            raise ScenarioExportError(f"actor {self.name!r}: needs a name and a finite speed >= 0")


@dataclass(frozen=True)
class XoscEvent:
    """At ``t_s``, ``actor`` does ``kind``. ``lane_change`` params: ``lane_offset`` (±lanes),
    ``duration_s``; ``speed``: ``speed_mps`` and optionally ``duration_s``; ``follow_trajectory``:
    ``vertices`` of ``(t_s, x_m, y_m, heading_rad)`` in absolute simulation time."""

    t_s: float
    actor: str
    kind: str
    params: Mapping[str, float] = field(default_factory=dict)
    vertices: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ScenarioExportError(f"event kind {self.kind!r} unknown (known: {', '.join(EVENT_KINDS)})")
        need = {"lane_change": ("lane_offset",), "speed": ("speed_mps",), "follow_trajectory": ()}[self.kind]
        missing = [k for k in need if k not in self.params]
        if missing or (self.kind == "follow_trajectory" and len(self.vertices) < 2):
            lacking = missing or "two vertices"
            raise ScenarioExportError(f"{self.kind} event for {self.actor!r} lacks {lacking}")
        if self.kind == "lane_change" and (self.params["lane_offset"] % 1 or not self.params["lane_offset"]):
            raise ScenarioExportError(f"lane_offset must be a non-zero integer, got "
                                      f"{self.params['lane_offset']}")


@dataclass(frozen=True)
class XoscTimeOfDay:
    """Local date and time (ISO 8601) and whether the sun moves during the run."""

    date_time: str = "2024-06-01T12:00:00"
    animation: bool = False


@dataclass(frozen=True)
class XoscWeather:
    """Weather in OpenSCENARIO units: precipitation in mm/h, fog visual range in m, sun angles in
    rad, illuminance in lux, temperature in K, pressure in Pa."""

    precipitation: str = "dry"
    precipitation_mm_per_h: float = 0.0
    fog_visual_range_m: float = 100000.0
    sun_azimuth_rad: float = 0.0
    sun_elevation_rad: float = 1.0
    sun_illuminance_lux: float = 100000.0
    cloud_cover: str = "zeroOktas"
    temperature_k: float = 293.15
    pressure_pa: float = 101325.0

    def __post_init__(self) -> None:
        if self.precipitation not in PRECIPITATION or self.cloud_cover not in CLOUD_COVER:
            raise ScenarioExportError(f"weather: precipitation must be one of {PRECIPITATION} and cloud "
                                      f"cover one of {CLOUD_COVER}")


@dataclass(frozen=True)
class XoscScenario:
    """Everything the exporter needs. ``road_network`` is the OpenDRIVE file path ('' for none)."""

    name: str
    duration_s: float
    actors: tuple[XoscActor, ...]
    events: tuple[XoscEvent, ...] = ()
    time_of_day: XoscTimeOfDay = XoscTimeOfDay()
    weather: XoscWeather = XoscWeather()
    road_network: str = ""
    parameters: Mapping[str, float] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        names = [a.name for a in self.actors]
        if not self.actors or len(set(names)) != len(names):
            raise ScenarioExportError(f"scenario {self.name!r}: needs actors with unique names, got {names}")
        if not self.duration_s > 0.0:
            raise ScenarioExportError(f"scenario {self.name!r}: duration_s must be positive")
        for ev in self.events:
            if ev.actor not in names or not 0.0 <= ev.t_s <= self.duration_s:
                raise ScenarioExportError(f"event {ev.kind} at {ev.t_s} s names unknown actor {ev.actor!r} "
                                          f"or lies outside [0, {self.duration_s}] s")


def _sub(parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
    return ET.SubElement(parent, tag, {k: _fmt(v) for k, v in attrs.items()})


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


def _time_trigger(parent: ET.Element, tag: str, name: str, t_s: float | str) -> None:
    cond = _sub(_sub(_sub(parent, tag), "ConditionGroup"), "Condition", name=name, delay=0.0,
                conditionEdge="none" if tag == "StopTrigger" else "rising")
    _sub(_sub(cond, "ByValueCondition"), "SimulationTimeCondition", value=t_s, rule="greaterOrEqual")


def _position(parent: ET.Element, actor: XoscActor) -> None:
    pos = _sub(parent, "Position")
    if actor.world_xyh is not None:
        x, y, h = actor.world_xyh
        _sub(pos, "WorldPosition", x=x, y=y, z=0.0, h=h)
    else:
        _sub(pos, "LanePosition", roadId=actor.road_id, laneId=actor.lane_id, s=actor.s_m, offset=0.0)


def _speed(parent: ET.Element, speed_mps: float, duration_s: float = 0.0) -> None:
    action = _sub(_sub(parent, "LongitudinalAction"), "SpeedAction")
    _sub(action, "SpeedActionDynamics", dynamicsShape="linear" if duration_s > 0 else "step",
         value=float(duration_s), dynamicsDimension="time")
    _sub(_sub(action, "SpeedActionTarget"), "AbsoluteTargetSpeed", value=float(speed_mps))


def _vehicle(parent: ET.Element, actor: XoscActor) -> None:
    veh = _sub(_sub(parent, "ScenarioObject", name=actor.name), "Vehicle", name=actor.name,
               vehicleCategory="car")
    box = _sub(veh, "BoundingBox")
    _sub(box, "Center", x=0.0, y=0.0, z=actor.height_m / 2)
    _sub(box, "Dimensions", width=actor.width_m, length=actor.length_m, height=actor.height_m)
    _sub(veh, "Performance", maxSpeed=70.0, maxAcceleration=10.0, maxDeceleration=10.0)
    axles = _sub(veh, "Axles")
    wheelbase = 0.6 * actor.length_m
    _sub(axles, "FrontAxle", maxSteering=0.5, wheelDiameter=0.6, trackWidth=actor.width_m - 0.3,
         positionX=wheelbase / 2, positionZ=0.3)
    _sub(axles, "RearAxle", maxSteering=0.0, wheelDiameter=0.6, trackWidth=actor.width_m - 0.3,
         positionX=-wheelbase / 2, positionZ=0.3)
    _sub(veh, "Properties")


def _event_action(parent: ET.Element, ev: XoscEvent) -> None:
    private = _sub(_sub(parent, "Action", name=f"{ev.kind}_action"), "PrivateAction")
    if ev.kind == "speed":
        _speed(private, ev.params["speed_mps"], ev.params.get("duration_s", 0.0))
    elif ev.kind == "lane_change":
        action = _sub(_sub(private, "LateralAction"), "LaneChangeAction")
        _sub(action, "LaneChangeActionDynamics", dynamicsShape="sinusoidal",
             value=float(ev.params.get("duration_s", 3.0)), dynamicsDimension="time")
        _sub(_sub(action, "LaneChangeTarget"), "RelativeTargetLane", entityRef=ev.actor,
             value=int(ev.params["lane_offset"]))
    else:
        follow = _sub(_sub(private, "RoutingAction"), "FollowTrajectoryAction")
        traj = _sub(_sub(follow, "TrajectoryRef"), "Trajectory", name=f"{ev.actor}_trajectory", closed=False)
        line = _sub(_sub(traj, "Shape"), "Polyline")
        for t, x, y, h in ev.vertices:
            _sub(_sub(_sub(line, "Vertex", time=t), "Position"), "WorldPosition", x=x, y=y, z=0.0, h=h)
        _sub(_sub(follow, "TimeReference"), "Timing", domainAbsoluteRelative="absolute", scale=1.0,
             offset=0.0)
        _sub(follow, "TrajectoryFollowingMode", followingMode="position")


def to_xosc(sc: XoscScenario, date: datetime | None = None) -> ET.ElementTree:
    """Build the OpenSCENARIO 1.3 document tree for ``sc`` (``date`` stamps the FileHeader)."""
    root = ET.Element("OpenSCENARIO")
    stamp = (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")
    _sub(root, "FileHeader", revMajor=1, revMinor=3, date=stamp, description=sc.description or sc.name,
         author="avdata simulator_harness")
    params = _sub(root, "ParameterDeclarations")
    _sub(params, "ParameterDeclaration", name="Duration", parameterType="double", value=float(sc.duration_s))
    for name, value in sc.parameters.items():
        _sub(params, "ParameterDeclaration", name=name, parameterType="double", value=float(value))
    _sub(root, "CatalogLocations")
    network = _sub(root, "RoadNetwork")
    if sc.road_network:
        _sub(network, "LogicFile", filepath=sc.road_network)
    entities = _sub(root, "Entities")
    for actor in sc.actors:
        _vehicle(entities, actor)
    board = _sub(root, "Storyboard")
    actions = _sub(_sub(board, "Init"), "Actions")
    env = _sub(_sub(_sub(actions, "GlobalAction"), "EnvironmentAction"), "Environment", name="environment")
    _sub(env, "TimeOfDay", animation=sc.time_of_day.animation, dateTime=sc.time_of_day.date_time)
    w = sc.weather
    weather = _sub(env, "Weather", fractionalCloudCover=w.cloud_cover, temperature=w.temperature_k,
                   atmosphericPressure=w.pressure_pa)
    _sub(weather, "Sun", azimuth=w.sun_azimuth_rad, elevation=w.sun_elevation_rad,
         illuminance=w.sun_illuminance_lux)
    _sub(weather, "Fog", visualRange=w.fog_visual_range_m)
    _sub(weather, "Precipitation", precipitationType=w.precipitation,
         precipitationIntensity=w.precipitation_mm_per_h)
    _sub(env, "RoadCondition", frictionScaleFactor=1.0)
    for actor in sc.actors:
        private = _sub(actions, "Private", entityRef=actor.name)
        _position(_sub(_sub(private, "PrivateAction"), "TeleportAction"), actor)
        _speed(_sub(private, "PrivateAction"), actor.speed_mps)
    act = _sub(_sub(board, "Story", name=f"{sc.name}_story"), "Act", name=f"{sc.name}_act")
    for actor in sc.actors:
        events = sorted((e for e in sc.events if e.actor == actor.name), key=lambda e: e.t_s)
        group = _sub(act, "ManeuverGroup", maximumExecutionCount=1, name=f"{actor.name}_group")
        _sub(_sub(group, "Actors", selectTriggeringEntities=False), "EntityRef", entityRef=actor.name)
        if events:
            maneuver = _sub(group, "Maneuver", name=f"{actor.name}_maneuver")
            for i, ev in enumerate(events):
                event = _sub(maneuver, "Event", name=f"{actor.name}_event_{i}", priority="parallel")
                _event_action(event, ev)
                _time_trigger(event, "StartTrigger", f"{actor.name}_event_{i}_time", float(ev.t_s))
    _time_trigger(act, "StartTrigger", "act_start", 0.0)
    _time_trigger(board, "StopTrigger", "end_of_scenario", "$Duration")
    ET.indent(root)
    return ET.ElementTree(root)


def write_xosc(path: Path, sc: XoscScenario, date: datetime | None = None) -> Path:
    """Write ``sc`` as a UTF-8 ``.xosc`` file (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    to_xosc(sc, date).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path


def xosc_from_commonroad(cr: CommonRoadScenario, road_network: str = "", stride: int = 1) -> XoscScenario:
    """A CommonRoad seed as an :class:`XoscScenario`: each obstacle teleported to its first valid
    state and following its recorded track as a polyline (every ``stride``-th step, plus the last).
    Time 0 is the first step of the time grid."""
    if stride < 1:
        raise ScenarioExportError(f"stride must be >= 1, got {stride}")
    tr = cr.trajectories
    ids, lengths, widths = (require(tr.agent_id, "agent_id"), require(tr.length_m, "length_m"),
                            require(tr.width_m, "width_m"))
    t0 = float(tr.t_s[0])
    actors, events = [], []
    for row in range(tr.n_agents):
        idx = np.flatnonzero(tr.valid[row])
        keep = np.unique(np.append(idx[::stride], idx[-1]))
        name = f"obstacle_{int(ids[row])}"
        first = int(idx[0])
        actors.append(XoscActor(name, float(tr.speed_mps[row, first]),
                                world_xyh=(float(tr.x_m[row, first]), float(tr.y_m[row, first]),
                                           float(tr.yaw_rad[row, first])),
                                length_m=float(lengths[row]), width_m=float(widths[row])))
        if keep.size >= 2:
            vertices = tuple((float(tr.t_s[k]) - t0, float(tr.x_m[row, k]), float(tr.y_m[row, k]),
                              float(tr.yaw_rad[row, k])) for k in keep)
            events.append(XoscEvent(float(tr.t_s[first]) - t0, name, "follow_trajectory", vertices=vertices))
    return XoscScenario(name=cr.benchmark_id or "commonroad", duration_s=float(tr.t_s[-1]) - t0,
                        actors=tuple(actors), events=tuple(events), road_network=road_network,
                        description=f"CommonRoad {cr.benchmark_id} ({cr.version}), "
                                    f"{tr.n_agents} recorded agents")
