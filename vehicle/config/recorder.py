"""The recorder's tables of ``vehicle.toml``: sources, ring buffer, time sync, topics and trigger rules.

Re-exported by :mod:`vehicle.config.tree`, the root of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.triggers import TriggerKind
from vehicle.config.checks import non_negative, positive

#: Trigger kinds a TOML ``kind`` may name (``manual`` comes from an operator, not from a rule).
RULE_KINDS = frozenset(k.value for k in TriggerKind if k is not TriggerKind.MANUAL)

#: Expected publish rates (Hz) of the demo drive, used for gap detection when not configured.
DEFAULT_RATES_HZ = {"camera/front": 30.0, "lidar/top": 10.0, "imu": 200.0,
                    "vehicle_state": 50.0, "gnss": 10.0}


@dataclass(frozen=True)
class SourcesConfig:
    """ZeroMQ endpoints the recorder connects its SUB socket to.

    ``max_latency_s``: how much later than the vehicle-state stream any sensor's messages may arrive
    (a camera behind its encoder, a LiDAR finishing its sweep). A trigger window is cut once the
    vehicle-state time has passed its end by this much, so late sensors' last messages are in it;
    a message that still arrives after its window was cut is counted as ``drops{stage="snapshot"}``.
    """

    endpoints: tuple[str, ...] = ("tcp://127.0.0.1:5555",)
    rcvhwm: int = 100_000
    max_payload_bytes: int = 64 * 1024 * 1024
    max_latency_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("endpoints must name at least one ZeroMQ endpoint")
        for ep in self.endpoints:
            if "://" not in ep:
                raise ValueError(f"endpoints: {ep!r} is not a ZeroMQ endpoint like tcp://host:port")
        positive("rcvhwm", self.rcvhwm)
        positive("max_payload_bytes", self.max_payload_bytes)
        non_negative("max_latency_s", self.max_latency_s)


@dataclass(frozen=True)
class BufferConfig:
    """Ring buffer bounds: age (s) and bytes in total, optionally bytes per topic."""

    max_age_s: float = 300.0
    max_bytes: int = 1024 * 1024 * 1024
    topic_max_bytes: dict[str, int] = field(default_factory=dict)
    latched_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive("max_age_s", self.max_age_s)
        positive("max_bytes", self.max_bytes)
        for topic, budget in self.topic_max_bytes.items():
            positive(f"topic_max_bytes.{topic}", budget)


#: Per model-score kind: the score it reads and its threshold, unless the table sets them.
SCORE_DEFAULTS: dict[str, tuple[str, float]] = {"uncertainty": ("uncertainty", 0.5), "ood": ("ood_ratio", 1.0)}


@dataclass(frozen=True)
class TriggerConfig:
    """One trigger rule; the table name is its name and ``kind`` says which rule it is.

    Fields used per kind: hard_brake (decel_mps2, min_duration_s), swerve (lat_accel_mps2,
    jerk_mps3, min_duration_s), ttc (ttc_s, min_speed_mps), disengagement (none), random
    (probability, period_s, seed), uncertainty/ood (score_key, threshold). All kinds use
    pre_s, post_s, cooldown_s and priority.

    ``score_key`` and ``threshold`` default per kind (:data:`SCORE_DEFAULTS`): ``uncertainty`` reads
    ``uncertainty`` at 0.5; ``ood`` reads ``ood_ratio`` (the distance over the threshold fitted with
    ``avdata-vehicle ood fit``) at 1.0, so a bare ``kind = "ood"`` fires exactly above the fitted
    threshold.
    """

    kind: str = ""
    pre_s: float = 30.0
    post_s: float = 10.0
    cooldown_s: float = 20.0
    priority: int = 50
    decel_mps2: float = 4.0
    min_duration_s: float = 0.2
    lat_accel_mps2: float = 4.0
    jerk_mps3: float = 0.0
    ttc_s: float = 3.0
    min_speed_mps: float = 1.0
    probability: float = 0.01
    period_s: float = 60.0
    seed: int = 0
    score_key: str = ""
    threshold: float | None = None

    def __post_init__(self) -> None:
        key, threshold = SCORE_DEFAULTS.get(self.kind, (self.kind, 0.5))
        if not self.score_key:
            object.__setattr__(self, "score_key", key)
        if self.threshold is None:
            object.__setattr__(self, "threshold", threshold)
        if self.kind not in RULE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(RULE_KINDS))}, got {self.kind!r}")
        for name in ("pre_s", "post_s", "cooldown_s", "min_duration_s", "jerk_mps3"):
            non_negative(name, getattr(self, name))
        for name in ("decel_mps2", "lat_accel_mps2", "ttc_s", "period_s"):
            positive(name, getattr(self, name))
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability!r}")


@dataclass(frozen=True)
class TopicsConfig:
    """Which topics carry the decoded streams the triggers read."""

    vehicle_state: str = "vehicle_state"
    model_scores: str = "model/scores"


@dataclass(frozen=True)
class TimeSyncConfig:
    """Clock-offset estimation; ``correct`` moves buffered times onto the vehicle clock.

    A sensor clock step is an offset jump larger than ``step_s`` seen on ``step_confirm``
    consecutive samples; ``step_s`` 0 turns detection off.
    """

    correct: bool = False
    block_s: float = 1.0
    fit_blocks: int = 30
    expected_hz: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES_HZ))
    gap_factor: float = 1.5
    step_s: float = 0.25
    step_confirm: int = 5

    def __post_init__(self) -> None:
        positive("block_s", self.block_s)
        positive("fit_blocks", self.fit_blocks)
        non_negative("step_s", self.step_s)
        positive("step_confirm", self.step_confirm)
        if self.gap_factor <= 1.0:
            raise ValueError(f"gap_factor must be > 1, got {self.gap_factor!r}")
        for topic, hz in self.expected_hz.items():
            positive(f"expected_hz.{topic}", hz)
