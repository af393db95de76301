"""Triggers: rules over decoded samples, and the snapshot windows they open, merged and cut.
"""

from vehicle.triggers.rules import (
    NS,
    RULES,
    Disengagement,
    HardBrake,
    ModelScore,
    RandomSample,
    Rule,
    StateSample,
    Swerve,
    TimeToCollision,
    TriggerEngine,
    decode_scores,
    decode_state,
)
from vehicle.triggers.windows import PendingWindow, WindowPlanner

__all__ = [
    "NS",
    "RULES",
    "Disengagement",
    "HardBrake",
    "ModelScore",
    "PendingWindow",
    "RandomSample",
    "Rule",
    "StateSample",
    "Swerve",
    "TimeToCollision",
    "TriggerEngine",
    "WindowPlanner",
    "decode_scores",
    "decode_state",
]
