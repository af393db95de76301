"""Judging a rollout: outcome metrics registered by name, and the hard plausibility gate.
"""

from simulator_harness.assessment.outcomes import (
    COMFORT_BOUNDS,
    METRICS,
    Collision,
    Comfort,
    HardBrakes,
    Metric,
    MetricResult,
    MinTTC,
    OffRoad,
    RedLight,
    RequiredDeceleration,
    SpeedLimit,
    compute_all,
    ego_kinematics,
    ego_overlaps,
    get,
    pairwise_collisions,
    register,
)
from simulator_harness.assessment.plausibility import (
    PlausibilityParams,
    Verdict,
    check,
    human_bound_violations,
)

__all__ = [
    "COMFORT_BOUNDS",
    "METRICS",
    "Collision",
    "Comfort",
    "HardBrakes",
    "Metric",
    "MetricResult",
    "MinTTC",
    "OffRoad",
    "PlausibilityParams",
    "RedLight",
    "RequiredDeceleration",
    "SpeedLimit",
    "Verdict",
    "check",
    "compute_all",
    "ego_kinematics",
    "ego_overlaps",
    "get",
    "human_bound_violations",
    "pairwise_collisions",
    "register",
]
