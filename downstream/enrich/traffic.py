"""Traffic density and agent types, from tracked objects where there are any, else camera detections.

Class names map to the ODD taxonomy's :class:`~simulator_harness.scenario.spec.ActorKind`
(:data:`AGENT_KINDS`): COCO names from the vehicle's YOLOX (``car``; ``truck`` and ``bus`` →
truck, the taxonomy's heavy vehicle; ``person`` → pedestrian; ``bicycle`` and ``motorcycle`` →
cyclist, parked two-wheelers included, which a camera detector cannot tell apart) and Argoverse 2
categories (riders are their own classes there, so ``BICYCLE``/``MOTORCYCLE`` without rider are
not agents). Unknown classes are ignored.

``traffic`` (``empty``, ``light``, ``moderate``, ``dense``) counts vehicles (car, truck):

- from tracks (source ``tracks``, confidence 0.8): the median over track times of vehicles within
  :data:`TRACK_RADIUS_M`; light up to 5, moderate up to 15, dense beyond (a 360° view);
- from detections (source ``detections``, 0.6, or 0.4 with fewer than 5 frames): the median per
  frame of vehicles scored ≥ :data:`MIN_SCORE`; light up to 3, moderate up to 7, dense beyond (one
  camera's field of view).

``agents`` tags name each kind seen: in a track with 3 or more valid boxes within the radius
(0.9), or detected with score ≥ 0.5 in 2 or more frames (confidence: the kind's best score, at most 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from downstream.enrich.records import ScoredFrame, Tracks
from downstream.enrich.tags import Tag, TagSource
from simulator_harness.scenario.spec import ActorKind

_CAR, _TRUCK, _PED, _CYC = ActorKind.CAR, ActorKind.TRUCK, ActorKind.PEDESTRIAN, ActorKind.CYCLIST
AGENT_KINDS: dict[str, ActorKind] = {
    "car": _CAR, "truck": _TRUCK, "bus": _TRUCK, "person": _PED, "bicycle": _CYC, "motorcycle": _CYC,
    "REGULAR_VEHICLE": _CAR, "LARGE_VEHICLE": _TRUCK, "BOX_TRUCK": _TRUCK, "TRUCK": _TRUCK, "TRUCK_CAB": _TRUCK,
    "BUS": _TRUCK, "SCHOOL_BUS": _TRUCK, "ARTICULATED_BUS": _TRUCK, "PEDESTRIAN": _PED, "BICYCLIST": _CYC,
    "MOTORCYCLIST": _CYC, "WHEELED_RIDER": _CYC,
}
VEHICLE_KINDS = frozenset({_CAR, _TRUCK})
MIN_SCORE = 0.3
AGENT_SCORE = 0.5
TRACK_RADIUS_M = 50.0
_TRACK_BINS = ((0, "empty"), (5, "light"), (15, "moderate"))
_FRAME_BINS = ((0, "empty"), (3, "light"), (7, "moderate"))


def agent_kind(class_name: str) -> ActorKind | None:
    """The taxonomy kind of a detector or dataset class name, or None when it is not a road user."""
    return AGENT_KINDS.get(class_name)


def _density(count: float, bins: tuple[tuple[int, str], ...]) -> str:
    for upper, name in bins:
        if count <= upper:
            return name
    return "dense"


def _kind_order(kinds: set[ActorKind]) -> list[ActorKind]:
    return [k for k in ActorKind if k in kinds]


def traffic_from_tracks(tracks: Tracks) -> tuple[Tag, ...]:
    """``traffic`` and ``agents`` tags from tracked objects (see the module docstring)."""
    if tracks.t_ns.size == 0 or not tracks.track_ids:
        return ()
    near = tracks.valid & (np.hypot(np.nan_to_num(tracks.x_m), np.nan_to_num(tracks.y_m)) <= TRACK_RADIUS_M)
    kinds = [agent_kind(k) for k in tracks.kinds]
    vehicle_rows = np.array([k in VEHICLE_KINDS for k in kinds])
    per_time = near[vehicle_rows].sum(axis=0) if vehicle_rows.any() else np.zeros(tracks.t_ns.size)
    density = _density(float(np.median(per_time)), _TRACK_BINS)
    seen = {k for k, n in zip(kinds, near.sum(axis=1), strict=True) if k is not None and n >= 3}
    return (Tag("traffic", density, TagSource.TRACKS, 0.8),
            *(Tag("agents", k.value, TagSource.TRACKS, 0.9) for k in _kind_order(seen)))


def traffic_from_detections(frames: Sequence[ScoredFrame]) -> tuple[Tag, ...]:
    """``traffic`` and ``agents`` tags from the segment's scored camera frames."""
    if not frames:
        return ()
    per_frame = [sum(1 for d in f.detections if d.score >= MIN_SCORE and agent_kind(d.class_name) in VEHICLE_KINDS)
                 for f in frames]
    density = _density(float(np.median(per_frame)), _FRAME_BINS)
    frames_with: dict[ActorKind, int] = {}
    best: dict[ActorKind, float] = {}
    for f in frames:
        kinds_here = set()
        for d in f.detections:
            kind = agent_kind(d.class_name)
            if kind is not None and d.score >= AGENT_SCORE:
                kinds_here.add(kind)
                best[kind] = max(best.get(kind, 0.0), d.score)
        for kind in kinds_here:
            frames_with[kind] = frames_with.get(kind, 0) + 1
    seen = {k for k, n in frames_with.items() if n >= 2}
    confidence = 0.6 if len(frames) >= 5 else 0.4
    return (Tag("traffic", density, TagSource.DETECTIONS, confidence),
            *(Tag("agents", k.value, TagSource.DETECTIONS, round(min(0.9, best[k]), 3)) for k in _kind_order(seen)))


def traffic_tags(frames: Sequence[ScoredFrame], tracks: Tracks | None = None) -> tuple[Tag, ...]:
    """Tracks' tags when tracks hold any object, else the detections' tags."""
    from_tracks = traffic_from_tracks(tracks) if tracks is not None else ()
    return from_tracks or traffic_from_detections(frames)
