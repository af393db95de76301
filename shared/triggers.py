"""Trigger events: why a snapshot was cut, and which window of time it covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared import wire
from shared.errors import MalformedMessage

SCHEMA = "avdata.TriggerEvent"
VERSIONS = frozenset({1})


class TriggerKind(StrEnum):
    HARD_BRAKE = "hard_brake"
    SWERVE = "swerve"
    TTC = "ttc"
    UNCERTAINTY = "uncertainty"
    OOD = "ood"
    DISENGAGEMENT = "disengagement"
    RANDOM = "random"
    MANUAL = "manual"


class TriggerSource(StrEnum):
    RULE = "rule"
    MODEL = "model"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """A trigger that fired at ``t_ns`` (vehicle clock) asking for ``[start_ns, end_ns]``.

    ``priority``: higher uploads first and is evicted last (random samples are lowest).
    ``scores``: the numbers that made the rule fire (e.g. ``{"decel_mps2": 6.1}``).
    """

    kind: TriggerKind
    t_ns: int
    start_ns: int
    end_ns: int
    priority: int
    source: TriggerSource
    name: str = ""
    scores: dict[str, float] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "t_ns": self.t_ns, "start_ns": self.start_ns,
            "end_ns": self.end_ns, "priority": self.priority, "source": self.source.value,
            "name": self.name, "scores": dict(self.scores),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> TriggerEvent:
        f = wire.field
        try:
            kind = TriggerKind(f(body, "kind", str, SCHEMA))
            source = TriggerSource(f(body, "source", str, SCHEMA))
        except ValueError as exc:
            raise MalformedMessage(f"{SCHEMA}: {exc}") from exc
        scores = f(body, "scores", dict, SCHEMA)
        return cls(
            kind=kind, t_ns=f(body, "t_ns", int, SCHEMA), start_ns=f(body, "start_ns", int, SCHEMA),
            end_ns=f(body, "end_ns", int, SCHEMA), priority=f(body, "priority", int, SCHEMA),
            source=source, name=str(body.get("name", "")),
            scores={str(k): float(v) for k, v in scores.items()},
        )

    def encode(self) -> bytes:
        return wire.pack(SCHEMA, 1, self.to_body())

    @classmethod
    def decode(cls, data: bytes) -> TriggerEvent:
        _, body = wire.unpack(data, SCHEMA, VERSIONS)
        return cls.from_body(body)
