"""Events in a segment: the triggers that fired, hard brakes, cut-ins, and out-of-distribution frames.

- :func:`trigger_events`: each of the segment's :class:`~shared.triggers.TriggerEvent` (certain:
  it fired), tagged ``trigger:<kind>``.
- :func:`hard_brakes`: longitudinal acceleration at or below −4 m/s² for 0.2 s or more (the
  vehicle's default ``hard_brake`` trigger), one event per episode at its start, with the speed
  then, the peak deceleration and, when tracks are given, the lead vehicle (the nearest
  same-direction vehicle track ahead in the ego corridor within 60 m). Tagged
  ``event:hard_brake``, confidence 0.9.
- :func:`cut_ins`: a vehicle track that enters the ego corridor ahead from an adjacent lane (see
  :class:`CutInRule`), tagged ``event:cut_in``, confidence 0.7. The corridor follows the path the
  ego drove next (:mod:`.corridor`) when ego poses are given, else the vehicle's x axis (which a
  curve or an ego lane change can fool); lane widths are assumed, not map-matched.
- :func:`anomalies`: frames whose OOD score exceeds the reference threshold (3.0, the vehicle's
  default ``ood`` trigger), one event at the highest, tagged ``anomaly:ood`` with confidence
  ``0.5 + 0.5 · min(1, (max − threshold) / threshold)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from downstream.enrich.corridor import PathCoords, path_coords
from downstream.enrich.errors import EnrichInputError
from downstream.enrich.records import EgoStates, ScoredFrame, Tracks
from downstream.enrich.tags import Tag, TagSource
from downstream.enrich.traffic import VEHICLE_KINDS, agent_kind
from shared.triggers import TriggerEvent
from simulator_harness.scenario.spec import ActorKind

HARD_BRAKE_MPS2 = 4.0
HARD_BRAKE_MIN_S = 0.2
OOD_THRESHOLD = 3.0
LEAD_RANGE_M = 60.0
LEAD_MAX_AGE_NS = 500_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at ``t_ns`` (vehicle clock); the optional fields say what was measured.

    ``agent`` is the taxonomy kind of the other road user involved (the lead vehicle; for a cut-in
    ``<kind>:<side>``, the side it came from); ``score`` an OOD score, or a trigger's largest score.
    """

    kind: str
    t_ns: int
    source: TagSource
    confidence: float
    speed_mps: float | None = None
    decel_mps2: float | None = None
    gap_m: float | None = None
    agent: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class CutInRule:
    """A cut-in: a vehicle track, heading within ``max_heading_deg`` of the ego path, that was in an
    adjacent lane (``adjacent_min_m <= |d| <= adjacent_max_m``, ahead) within ``lookback_s`` before
    it entered the ego corridor (``|d| <= lane_half_width_m``, ``0 < s <= max_gap_m``) and stayed in
    it for ``min_dwell_s``. ``s`` and ``d`` are path coordinates (:mod:`.corridor`), metres."""

    lane_half_width_m: float = 1.6
    adjacent_min_m: float = 2.4
    adjacent_max_m: float = 6.0
    max_gap_m: float = 40.0
    lookback_s: float = 3.0
    min_dwell_s: float = 0.5
    max_heading_deg: float = 45.0

    def __post_init__(self) -> None:
        if not 0 < self.lane_half_width_m < self.adjacent_min_m < self.adjacent_max_m or self.max_gap_m <= 0:
            raise EnrichInputError("cut-in rule: need 0 < lane_half_width_m < adjacent_min_m < adjacent_max_m "
                                   "and max_gap_m > 0")


def trigger_events(triggers: Sequence[TriggerEvent]) -> tuple[Event, ...]:
    """The segment's triggers as events (confidence 1: they fired), in time order."""
    return tuple(Event(t.kind.value, t.t_ns, TagSource.TRIGGER, 1.0, score=max(t.scores.values(), default=None))
                 for t in sorted(triggers, key=lambda t: (t.t_ns, t.kind.value)))


def _episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index runs where ``mask`` holds."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _aligned(pc: PathCoords, rule: CutInRule) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(np.nan_to_num(pc.heading_rad, nan=np.pi)) <= np.radians(rule.max_heading_deg))


def _vehicle_rows(tracks: Tracks) -> list[tuple[int, ActorKind]]:
    return [(row, k) for row, k in enumerate(agent_kind(name) for name in tracks.kinds)
            if k is not None and k in VEHICLE_KINDS]


def _lead(tracks: Tracks, pc: PathCoords, i: int, rule: CutInRule) -> tuple[str, float] | None:
    s, d = np.nan_to_num(pc.s_m[:, i], nan=-1.0), np.nan_to_num(pc.d_m[:, i], nan=1e9)
    aligned = _aligned(pc, rule)[:, i]
    ahead = [(float(s[row]), k.value) for row, k in _vehicle_rows(tracks)
             if 0 < s[row] <= LEAD_RANGE_M and abs(d[row]) <= rule.lane_half_width_m and aligned[row]]
    if not ahead:
        return None
    gap, kind = min(ahead)
    return kind, gap


def lead_vehicle(tracks: Tracks, t_ns: int, ego: EgoStates | None = None,
                 rule: CutInRule | None = None) -> tuple[str, float] | None:
    """``(kind, gap_m)`` of the nearest same-direction vehicle in the ego corridor within 60 m at ``t_ns``."""
    return _lead(tracks, path_coords(tracks, ego), tracks.time_index(t_ns), rule or CutInRule())


def hard_brakes(ego: EgoStates, tracks: Tracks | None = None) -> tuple[Event, ...]:
    """Hard-brake episodes (see the module docstring)."""
    out = []
    pc = path_coords(tracks, ego) if tracks is not None and tracks.t_ns.size else None
    for start, end in _episodes(ego.accel_mps2 <= -HARD_BRAKE_MPS2):
        if (int(ego.t_ns[end - 1]) - int(ego.t_ns[start])) / 1e9 < HARD_BRAKE_MIN_S:
            continue
        t = int(ego.t_ns[start])
        lead = None
        if tracks is not None and pc is not None:
            i = tracks.time_index(t)
            if abs(int(tracks.t_ns[i]) - t) <= LEAD_MAX_AGE_NS:  # tracks may not cover the brake
                lead = _lead(tracks, pc, i, CutInRule())
        out.append(Event("hard_brake", t, TagSource.VEHICLE_STATE, 0.9, speed_mps=float(ego.speed_mps[start]),
                         decel_mps2=float(-ego.accel_mps2[start:end].min()),
                         gap_m=None if lead is None else round(lead[1], 1), agent=None if lead is None else lead[0]))
    return tuple(out)


def cut_ins(tracks: Tracks, ego: EgoStates | None = None, rule: CutInRule | None = None) -> tuple[Event, ...]:
    """Vehicles entering the ego corridor ahead from an adjacent lane (see :class:`CutInRule`)."""
    r = rule or CutInRule()
    if tracks.t_ns.size == 0:
        return ()
    pc = path_coords(tracks, ego)
    s, d = np.nan_to_num(pc.s_m, nan=-1.0), np.nan_to_num(pc.d_m, nan=1e9)
    aligned = _aligned(pc, r)
    inside = (s > 0) & (s <= r.max_gap_m) & (np.abs(d) <= r.lane_half_width_m) & aligned
    beside = (s > 0) & (s <= r.max_gap_m + 10) & (np.abs(d) >= r.adjacent_min_m) & (np.abs(d) <= r.adjacent_max_m)
    t_s = (tracks.t_ns - tracks.t_ns[0]) / 1e9
    out = []
    for row, k in _vehicle_rows(tracks):
        for start, end in _episodes(inside[row]):
            if t_s[end - 1] - t_s[start] < r.min_dwell_s:
                continue
            before = np.flatnonzero(beside[row, :start] & (t_s[:start] >= t_s[start] - r.lookback_s))
            if before.size == 0:
                continue
            side = "left" if d[row, before[-1]] > 0 else "right"
            t = int(tracks.t_ns[start])
            out.append(Event("cut_in", t, TagSource.TRACKS, 0.7, gap_m=round(float(s[row, start]), 1),
                             agent=f"{k.value}:{side}"))
    return tuple(sorted(out, key=lambda e: (e.t_ns, e.agent or "")))


def anomalies(frames: Sequence[ScoredFrame], threshold: float = OOD_THRESHOLD) -> tuple[Event, ...]:
    """One ``ood`` event at the highest score above ``threshold``, or none."""
    if threshold <= 0:
        raise EnrichInputError(f"OOD threshold must be positive, got {threshold}")
    scored = [f for f in frames if f.ood_score is not None and np.isfinite(f.ood_score)]
    above = [f for f in scored if f.ood_score is not None and f.ood_score > threshold]
    if not above:
        return ()
    top = max(above, key=lambda f: (f.ood_score or 0.0, -f.t_ns))
    score = float(top.ood_score or 0.0)
    confidence = 0.5 + 0.5 * min(1.0, (score - threshold) / threshold)
    return (Event("ood", top.t_ns, TagSource.OOD, round(confidence, 3), score=score),)


def event_tags(events: Sequence[Event]) -> tuple[Tag, ...]:
    """``trigger:<kind>``, ``event:<kind>`` and ``anomaly:ood`` tags, the most confident per tag."""
    best: dict[str, Tag] = {}
    for e in events:
        name = {TagSource.TRIGGER: "trigger", TagSource.OOD: "anomaly"}.get(e.source, "event")
        tag = Tag(name, e.kind, e.source, e.confidence)
        key = tag.encode()
        if key not in best or tag.confidence > best[key].confidence:
            best[key] = tag
    return tuple(best[k] for k in sorted(best))
