"""Labeling: tiered auto-labels, verification, human review, a versioned label store, and active
learning that picks what to label next (seed 000 §7, §8, §12.1)."""

from downstream.labeling.records import (
    GROUND_TRUTH_TIERS,
    Box2D,
    Box3D,
    LabelProvenance,
    LabelSet,
    LabelType,
    ProducerKind,
    Tier,
)

__all__ = [
    "GROUND_TRUTH_TIERS",
    "Box2D",
    "Box3D",
    "LabelProvenance",
    "LabelSet",
    "LabelType",
    "ProducerKind",
    "Tier",
]
