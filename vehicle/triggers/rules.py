"""Trigger rules: pure functions of decoded samples that say when something is worth keeping.

Each rule sees vehicle-state samples (or model scores) in time order and returns a
:class:`shared.triggers.TriggerEvent` when it fires; the event asks for the window
``[t - pre_s, t + post_s]`` where ``t`` is the time of the sample that completed the rule. A rule
fires once per episode (its condition must clear before it can fire again) and not within
``cooldown_s`` of its last firing. No sockets, no clocks: tests drive rules with plain records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from shared import wire
from shared.errors import MalformedMessage
from shared.payloads import VehicleState, decode_small
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from vehicle.config.tree import TopicsConfig, TriggerConfig

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StateSample:
    """A vehicle-state sample as the rules see it; ``lead_*`` are ``None`` when not published."""

    t_ns: int
    state: VehicleState
    lead_distance_m: float | None = None
    lead_speed_mps: float | None = None


def decode_state(t_ns: int, payload: bytes | memoryview) -> StateSample:
    """Decode a ``vehicle_state_v1`` payload, keeping the optional lead-vehicle fields."""
    state = decode_small(payload, VehicleState)
    _, body = wire.unpack(bytes(payload), VehicleState.SCHEMA, frozenset({1}), max_bytes=4096)
    lead_d, lead_v = body.get("lead_distance_m"), body.get("lead_speed_mps")
    return StateSample(t_ns, state,
                       float(lead_d) if isinstance(lead_d, int | float) else None,
                       float(lead_v) if isinstance(lead_v, int | float) else None)


def decode_scores(payload: bytes | memoryview) -> dict[str, float]:
    """Numeric fields of a model-scores envelope (top level and a nested ``scores`` map)."""
    _, _, body = wire.unpack_any(bytes(payload), max_bytes=1024 * 1024)
    flat: dict[str, Any] = dict(body)
    nested = body.get("scores")
    if isinstance(nested, dict):
        flat.update(nested)
    scores = {str(k): float(v) for k, v in flat.items()
              if isinstance(v, int | float) and not isinstance(v, bool)}
    if not scores:
        raise MalformedMessage("model scores envelope carries no numeric score")
    return scores


class Rule:
    """Shared episode, cooldown and window logic; subclasses decide ``condition``."""

    source = TriggerSource.RULE

    def __init__(self, name: str, cfg: TriggerConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.kind = TriggerKind(cfg.kind)
        self._since_ns: int | None = None
        self._armed = True
        self._last_fire_ns: int | None = None

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        return None

    def observe_scores(self, t_ns: int, scores: dict[str, float]) -> TriggerEvent | None:
        return None

    def _sustained(self, t_ns: int, holds: bool, scores: dict[str, float]) -> TriggerEvent | None:
        """Fire once ``holds`` has been true continuously for ``min_duration_s``."""
        if not holds:
            self._since_ns, self._armed = None, True
            return None
        if self._since_ns is None:
            self._since_ns = t_ns
        if self._armed and t_ns - self._since_ns >= round(self.cfg.min_duration_s * NS):
            return self._fire(t_ns, scores)
        return None

    def _fire(self, t_ns: int, scores: dict[str, float]) -> TriggerEvent | None:
        cooldown_ns = round(self.cfg.cooldown_s * NS)
        if self._last_fire_ns is not None and t_ns - self._last_fire_ns < cooldown_ns:
            return None
        self._armed = False
        self._last_fire_ns = t_ns
        return TriggerEvent(kind=self.kind, t_ns=t_ns, start_ns=t_ns - round(self.cfg.pre_s * NS),
                            end_ns=t_ns + round(self.cfg.post_s * NS), priority=self.cfg.priority,
                            source=self.source, name=self.name, scores=scores)


class HardBrake(Rule):
    """Longitudinal acceleration at or below ``-decel_mps2`` for ``min_duration_s``."""

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        a = s.state.accel_mps2
        return self._sustained(s.t_ns, a <= -self.cfg.decel_mps2, {"decel_mps2": -a})


class Swerve(Rule):
    """|lateral acceleration| ≥ ``lat_accel_mps2`` sustained, or |lateral jerk| ≥ ``jerk_mps3``."""

    def __init__(self, name: str, cfg: TriggerConfig) -> None:
        super().__init__(name, cfg)
        self._prev: tuple[int, float] | None = None

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        lat = s.state.lat_accel_mps2
        jerk = 0.0
        if self._prev is not None and s.t_ns > self._prev[0]:
            jerk = (lat - self._prev[1]) / ((s.t_ns - self._prev[0]) / NS)
        self._prev = (s.t_ns, lat)
        scores = {"lat_accel_mps2": lat, "lat_jerk_mps3": jerk}
        if self.cfg.jerk_mps3 > 0 and abs(jerk) >= self.cfg.jerk_mps3:
            return self._fire(s.t_ns, scores)
        return self._sustained(s.t_ns, abs(lat) >= self.cfg.lat_accel_mps2, scores)


class TimeToCollision(Rule):
    """Time to reach the lead vehicle below ``ttc_s`` (needs ``lead_distance_m`` in the state)."""

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        if s.lead_distance_m is None or s.state.speed_mps < self.cfg.min_speed_mps:
            return self._sustained(s.t_ns, False, {})
        # Without a lead speed the lead is taken as stationary: the conservative reading.
        closing = s.state.speed_mps - (s.lead_speed_mps or 0.0)
        ttc = s.lead_distance_m / closing if closing > 0 else float("inf")
        return self._sustained(s.t_ns, ttc < self.cfg.ttc_s, {"ttc_s": ttc})


class Disengagement(Rule):
    """Autonomy going from engaged to not engaged."""

    def __init__(self, name: str, cfg: TriggerConfig) -> None:
        super().__init__(name, cfg)
        self._engaged: bool | None = None

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        was, self._engaged = self._engaged, s.state.autonomy_engaged
        if was and not s.state.autonomy_engaged:
            return self._fire(s.t_ns, {"speed_mps": s.state.speed_mps})
        return None


class RandomSample(Rule):
    """One seeded draw per ``period_s`` of vehicle time; fires with ``probability``."""

    def __init__(self, name: str, cfg: TriggerConfig) -> None:
        super().__init__(name, cfg)
        self._rng = random.Random(cfg.seed)
        self._period: int | None = None

    def observe_state(self, s: StateSample) -> TriggerEvent | None:
        period = s.t_ns // round(self.cfg.period_s * NS)
        if period == self._period:
            return None
        self._period = period
        draw = self._rng.random()
        return self._fire(s.t_ns, {"draw": draw}) if draw < self.cfg.probability else None


class ModelScore(Rule):
    """A model score (``score_key``; per-kind defaults in :data:`vehicle.config.recorder.SCORE_DEFAULTS`)
    at or above ``threshold``."""

    source = TriggerSource.MODEL

    def observe_scores(self, t_ns: int, scores: dict[str, float]) -> TriggerEvent | None:
        key, threshold = self.cfg.score_key, self.cfg.threshold
        if key not in scores or threshold is None:
            return None
        return self._sustained(t_ns, scores[key] >= threshold, {key: scores[key]})


RULES: dict[str, type[Rule]] = {
    "hard_brake": HardBrake, "swerve": Swerve, "ttc": TimeToCollision,
    "disengagement": Disengagement, "random": RandomSample, "uncertainty": ModelScore, "ood": ModelScore,
}


class TriggerEngine:
    """Routes decoded samples to every configured rule; decode errors propagate typed."""

    def __init__(self, triggers: dict[str, TriggerConfig], topics: TopicsConfig) -> None:
        self.rules = [RULES[cfg.kind](name, cfg) for name, cfg in sorted(triggers.items())]
        self.topics = topics

    def observe(self, t_ns: int, topic: str, payload: bytes | memoryview) -> list[TriggerEvent]:
        """Events fired by one message (``t_ns`` on the buffer's clock); ``[]`` for other topics."""
        if topic == self.topics.vehicle_state:
            sample = decode_state(t_ns, payload)
            fired = [r.observe_state(sample) for r in self.rules]
        elif topic == self.topics.model_scores:
            scores = decode_scores(payload)
            fired = [r.observe_scores(t_ns, scores) for r in self.rules]
        else:
            return []
        return [e for e in fired if e is not None]
