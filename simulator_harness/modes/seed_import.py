"""What ``avdata-sim seed import`` found in a CommonRoad file: lanes, agents, the ego, what was
skipped and why, what the straight road draws differently, and whether the recorded tracks pass the
plausibility gate's bounds (smoothed, :func:`~simulator_harness.assessment.plausibility.check_recorded`).

:func:`summarize` is pure; :meth:`ImportSummary.format` is the table the command prints and
:meth:`ImportSummary.to_dict` its ``--json`` form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from simulator_harness.assessment.plausibility import check_recorded
from simulator_harness.assessment.smoothing import RECORDED_HALF_WINDOW_S
from simulator_harness.seeds import CommonRoadScenario, Seed, recorded_tracks
from simulator_harness.trajectory import require


@dataclass(frozen=True)
class LaneRow:
    """One lane of the straightened road: the lanelets it joins, their mean width and summed length."""

    lane: int
    lanelets: tuple[int, ...]
    width_m: float
    length_m: float


@dataclass(frozen=True)
class AgentRow:
    """One road user of the spec: its name there, obstacle id, CommonRoad type, simulator kind, start."""

    name: str
    obstacle_id: int
    recorded_type: str
    kind: str
    lane: int
    s_m: float
    speed_mps: float


@dataclass(frozen=True)
class ImportSummary:
    """The import of one file (see the module docstring)."""

    source: str
    benchmark_id: str
    version: str
    dt_s: float
    dynamic_obstacles: int
    static_obstacles: int
    spec_name: str
    lanes: tuple[LaneRow, ...]
    road_length_m: float
    map_length_m: float
    speed_limit_mps: float
    duration_s: float
    agents: tuple[AgentRow, ...]
    ego_obstacle_id: int
    skipped: tuple[tuple[int, str], ...]
    warnings: tuple[str, ...]
    variations: tuple[tuple[str, float, float], ...]
    recorded_checked: int
    recorded_failures: tuple[str, ...]  # one line per recorded road user that fails, its reasons joined

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    def format(self) -> str:
        """The summary as the text table ``seed import`` prints."""
        w = float(np.mean([r.width_m for r in self.lanes]))
        head = [f"{self.source}: CommonRoad {self.version} {self.benchmark_id}, dt {self.dt_s:g} s, "
                f"{self.dynamic_obstacles} dynamic and {self.static_obstacles} static obstacles",
                f"spec {self.spec_name}: {len(self.lanes)} lanes of {w:.2f} m, road {self.road_length_m:.0f} m "
                f"(map {self.map_length_m:.1f} m, extended downstream), speed limit {self.speed_limit_mps:g} m/s, "
                f"{self.duration_s:g} s"]
        lanes = [f"{'lane':>4}  {'lanelets':<16}{'width_m':>8}{'length_m':>10}"]
        lanes += [f"{r.lane:>4}  {','.join(map(str, r.lanelets)):<16}{r.width_m:>8.2f}{r.length_m:>10.1f}"
                  for r in self.lanes]
        agents = [f"{'agent':<16}{'obstacle':>9}  {'type':<12}{'kind':<11}{'lane':>4}{'s_m':>9}{'speed_mps':>11}"]
        agents += [f"{a.name:<16}{a.obstacle_id:>9}  {a.recorded_type:<12}{a.kind:<11}{a.lane:>4}{a.s_m:>9.1f}"
                   f"{a.speed_mps:>11.2f}" for a in self.agents]
        notes = [f"skipped obstacle {i}: {why}" for i, why in self.skipped]
        notes += [f"warning: {w}" for w in self.warnings]
        notes += [f"varies {key} over {lo:g}..{hi:g}" for key, lo, hi in self.variations]
        passed = self.recorded_checked - len(self.recorded_failures)
        notes.append(f"recorded tracks against the gate's bounds (smoothed over ±{RECORDED_HALF_WINDOW_S:g} s): "
                     f"{passed} of {self.recorded_checked} pass")
        notes += [f"  {r}" for r in self.recorded_failures]
        return "\n\n".join("\n".join(part) for part in (head, lanes, agents, notes))


def summarize(cr: CommonRoadScenario, seed: Seed) -> ImportSummary:
    """The :class:`ImportSummary` of ``seed``, made from ``cr``."""
    spec, frame = seed.spec, seed.frame
    lanes = []
    for lane in range(frame.lanes):
        members = [la for la in cr.lanelets if frame.lane_of[la.lanelet_id] == lane]
        width = float(np.mean([np.linalg.norm(la.left_m - la.right_m, axis=1).mean() for la in members]))
        length = sum(float(np.linalg.norm(np.diff(la.centre_m, axis=0), axis=1).sum()) for la in members)
        lanes.append(LaneRow(lane, tuple(la.lanelet_id for la in members), round(width, 3), round(length, 2)))
    tr = cr.trajectories
    types = {int(i): str(k) for i, k in zip(require(tr.agent_id, "agent_id"), require(tr.kind, "kind"), strict=True)}
    types.update({ob.obstacle_id: ob.kind for ob in cr.static_obstacles})
    ego = AgentRow("ego", seed.ego_obstacle_id, types[seed.ego_obstacle_id], "car", spec.ego.lane, spec.ego.s_m,
                   spec.ego.speed_mps)
    agents = [ego] + [AgentRow(a.name, int(a.name.removeprefix("obstacle_")), types[int(a.name.removeprefix(
        "obstacle_"))], str(a.kind), a.lane, a.s_m, a.speed_mps) for a in spec.actors]
    recorded = recorded_tracks(cr)
    verdicts = check_recorded(recorded, spec.road.speed_limit_mps)
    failures = tuple("; ".join(v.reasons) for v in verdicts if not v.passed)
    return ImportSummary(
        source=cr.source, benchmark_id=cr.benchmark_id, version=cr.version, dt_s=cr.dt_s,
        dynamic_obstacles=tr.n_agents, static_obstacles=len(cr.static_obstacles), spec_name=spec.name,
        lanes=tuple(lanes), road_length_m=spec.road.length_m, map_length_m=round(frame.length_m, 2),
        speed_limit_mps=spec.road.speed_limit_mps, duration_s=spec.duration_s, agents=tuple(agents),
        ego_obstacle_id=seed.ego_obstacle_id, skipped=seed.skipped, warnings=seed.warnings,
        variations=tuple((v.key, v.low, v.high) for v in spec.variations), recorded_checked=len(verdicts),
        recorded_failures=failures)
