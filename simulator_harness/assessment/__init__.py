"""Judging a rollout: outcome metrics registered by name, and the hard plausibility gate (which also
checks smoothed recorded tracks against its human bounds).
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
    check_recorded,
    human_bound_violations,
)
from simulator_harness.assessment.smoothing import RECORDED_HALF_WINDOW_S, local_linear_fit, smooth_recorded

__all__ = [
    "COMFORT_BOUNDS",
    "METRICS",
    "RECORDED_HALF_WINDOW_S",
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
    "check_recorded",
    "compute_all",
    "ego_kinematics",
    "ego_overlaps",
    "get",
    "human_bound_violations",
    "local_linear_fit",
    "pairwise_collisions",
    "register",
    "smooth_recorded",
]
