"""A segment's ``language_description``: a :class:`Describer` turns its facts into one line of English.

:class:`TemplateDescriber` (the default) is deterministic: the same facts give the same words. It
uses the tags at or above its confidence floor (0.5) and the events, in this order, joined by
commas: lighting (``day``, ``dawn``/``dusk`` by the time of day, ``night``; ``(camera disagrees)``
after a failed brightness check); road (``highway``, ``urban road``, ``rural road``, or
``<type> intersection``); traffic (``no traffic``, ``light``/``moderate``/``dense traffic``);
other road users besides cars (``with trucks, pedestrians and cyclists``); then the events in time
order (``hard brake at 31 km/h behind a truck``, ``cut-in by a car from the left 12 m ahead``,
``unusual scene (OOD 4.2)``) and the triggers no event explains (``swerve trigger``). A VLM plugs in
as another :class:`Describer`; :attr:`SceneFacts.images` carries the keyframes it would look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from downstream.enrich.events import Event
from downstream.enrich.tags import DEFAULT_MIN_CONFIDENCE, Tag, TagSource, best

_ROAD = {"highway": "highway", "urban": "urban road", "rural": "rural road"}
_TRAFFIC = {"empty": "no traffic", "light": "light traffic", "moderate": "moderate traffic", "dense": "dense traffic"}
_PLURAL = {"truck": "trucks", "pedestrian": "pedestrians", "cyclist": "cyclists"}
_TRIGGER = {"hard_brake": "hard-brake trigger", "swerve": "swerve trigger", "ttc": "time-to-collision trigger",
            "uncertainty": "uncertain-model trigger", "ood": "out-of-distribution trigger",
            "disengagement": "disengagement", "random": "random sample", "manual": "manual snapshot"}
#: Which detected event explains which trigger.
_EXPLAINS = {"hard_brake": "hard_brake", "ood": "ood"}


@dataclass(frozen=True, eq=False)
class SceneFacts:
    """What is known about a segment: its tags, its events, and keyframes for describers that look."""

    tags: tuple[Tag, ...]
    events: tuple[Event, ...] = ()
    images: tuple[npt.NDArray[np.uint8], ...] = ()


@runtime_checkable
class Describer(Protocol):
    """Facts in, one line of English out."""

    name: str  # recorded with the description (e.g. in provenance), so a reader knows who wrote it

    def describe(self, facts: SceneFacts) -> str:
        """The description of ``facts``."""
        ...


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class TemplateDescriber:
    """The deterministic template describer (see the module docstring)."""

    name = "template/1"

    def __init__(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> None:
        self.min_confidence = min_confidence

    def _tag(self, tags: list[Tag], name: str) -> Tag | None:
        return best(tags, name)

    def _lighting(self, tags: list[Tag]) -> list[str]:
        light = self._tag(tags, "lighting")
        if light is None:
            return []
        word = light.value
        if word == "dusk":
            period = self._tag(tags, "time_of_day")
            word = "dawn" if period is not None and period.value == "morning" else "dusk"
        check = self._tag(tags, "lighting_check")
        return [word + (" (camera disagrees)" if check is not None and check.value == "disagree" else "")]

    def _road(self, tags: list[Tag]) -> list[str]:
        kind, geometry = self._tag(tags, "road_type"), self._tag(tags, "road_geometry")
        if geometry is not None and geometry.value == "intersection":
            return [f"{kind.value} intersection" if kind is not None else "intersection"]
        return [_ROAD.get(kind.value, kind.value)] if kind is not None else []

    def _traffic(self, tags: list[Tag]) -> list[str]:
        out = []
        density = self._tag(tags, "traffic")
        if density is not None:
            out.append(_TRAFFIC.get(density.value, f"{density.value} traffic"))
        others = {t.value for t in tags if t.name == "agents"} - {"car"}
        names = [_PLURAL[k] for k in _PLURAL if k in others] + sorted(others - set(_PLURAL))
        if names:
            out.append("with " + _join(names))
        return out

    @staticmethod
    def _event(e: Event) -> str:
        if e.kind == "hard_brake" and e.source is not TagSource.TRIGGER:
            text = "hard brake" + (f" at {3.6 * e.speed_mps:.0f} km/h" if e.speed_mps is not None else "")
            return text + (f" behind a {e.agent}" if e.agent else "")
        if e.kind == "cut_in":
            kind, _, side = (e.agent or "vehicle").partition(":")
            return f"cut-in by a {kind}" + (f" from the {side}" if side else "") + \
                (f" {e.gap_m:.0f} m ahead" if e.gap_m is not None else "")
        if e.kind == "ood" and e.source is TagSource.OOD:
            return "unusual scene" + (f" (OOD {e.score:.1f})" if e.score is not None else "")
        return _TRIGGER.get(e.kind, f"{e.kind.replace('_', ' ')} trigger")

    def describe(self, facts: SceneFacts) -> str:
        """One line of English from ``facts``; ``"no notable content"`` when nothing is known."""
        tags = [t for t in facts.tags if t.confidence >= self.min_confidence]
        detected = {e.kind for e in facts.events if e.source is not TagSource.TRIGGER}
        events = sorted((e for e in facts.events if e.confidence >= self.min_confidence
                         and not (e.source is TagSource.TRIGGER and _EXPLAINS.get(e.kind) in detected)),
                        key=lambda e: (e.t_ns, e.kind))
        words = self._lighting(tags) + self._road(tags) + self._traffic(tags) + [self._event(e) for e in events]
        return ", ".join(words) if words else "no notable content"
