"""Label records: what every tier produces, the store keeps and the exports write.

A :class:`LabelSet` is one immutable version of one label type for one segment (or one frame
source such as a dataset's labelled image): its items (2D boxes, 3D boxes, tracks, ego motion,
...) and a :class:`LabelProvenance` saying which tier made it, who or what made it (model name and
version, labeler id, simulator, dataset), how confident, when, what it cost and which version it
refines. Versions only ever get added; a correction is a new version whose ``parent_version``
points at the one it corrects.

Coordinates: 2D boxes are corner boxes in the original image's pixels; 3D boxes are in the
vehicle frame (x forward, y left, z up, metres, ``yaw_rad`` about z), centre at the box's centre.
Times are integer nanoseconds on the vehicle clock (``t_ns``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    """Where a label comes from (seed 000 §8.1), plus the two sources that are ground truth."""

    PHYSICS = "tier0_physics"  #: derived from sensors and maps: ego motion, LiDAR depth, Doppler, lanes
    OFFBOARD = "tier1_offboard"  #: offboard auto-labels: bigger detector, TTA, global tracking, 3D lifting
    VERIFIED = "tier2_verified"  #: auto-labels a Verifier agreed with
    HUMAN = "tier3_human"  #: made or corrected by a person
    SIMULATION = "simulation"  #: perfect labels of a synthetic segment (its ground-truth objects)
    DATASET = "dataset"  #: human labels imported from a public dataset (KITTI, nuScenes, AV2)


#: Tiers whose labels a model may be evaluated on: made by people (or known exactly), never by a model.
GROUND_TRUTH_TIERS = frozenset({Tier.HUMAN, Tier.DATASET, Tier.SIMULATION})


class LabelType(StrEnum):
    """What a label set holds."""

    BOX_2D = "box2d"
    BOX_3D = "box3d"
    TRACK = "track"
    EGO_MOTION = "ego_motion"
    DEPTH = "depth"
    OBJECT_VELOCITY = "object_velocity"
    LANE = "lane"


class ProducerKind(StrEnum):
    """Who or what made a label."""

    MODEL = "model"
    HUMAN = "human"
    PHYSICS = "physics"
    SIMULATOR = "simulator"
    DATASET = "dataset"


@dataclass(frozen=True, slots=True)
class Box2D:
    """A 2D box on one camera frame. ``attributes`` carries what a source knows beyond the box (e.g.
    KITTI's ``truncated``, ``occluded``); ``track_id`` links boxes of one object over time."""

    t_ns: int
    camera: str
    x1_px: float
    y1_px: float
    x2_px: float
    y2_px: float
    class_name: str
    confidence: float = 1.0
    track_id: str | None = None
    attributes: tuple[tuple[str, float | str], ...] = ()


@dataclass(frozen=True, slots=True)
class Box3D:
    """A 3D box in the vehicle frame at ``t_ns``: centre (m), size (m), heading (rad)."""

    t_ns: int
    x_m: float
    y_m: float
    z_m: float
    length_m: float
    width_m: float
    height_m: float
    yaw_rad: float
    class_name: str
    confidence: float = 1.0
    track_id: str | None = None
    velocity_mps: tuple[float, float] | None = None
    attributes: tuple[tuple[str, float | str], ...] = ()


@dataclass(frozen=True, slots=True)
class LabelProvenance:
    """Who or what made a label version. ``producer`` names the model (``yolox_nano@sha256:…``), the
    labeler id, the simulator generator version or the dataset; ``cost`` is in ``cost_unit``
    (``"cpu_s"`` for machines, ``"human_s"`` for people)."""

    tier: Tier
    producer_kind: ProducerKind
    producer: str
    confidence: float
    created_ns: int
    parent_version: int | None = None
    cost: float = 0.0
    cost_unit: str = "cpu_s"
    notes: str = ""


@dataclass(frozen=True, slots=True)
class LabelSet:
    """One version of one label type for one segment (``subject``: a segment id, or a dataset frame
    id such as ``kitti:000042``). ``items`` are :class:`Box2D`, :class:`Box3D` or type-specific
    records; ``version`` is assigned by the store (0 until stored)."""

    subject: str
    label_type: LabelType
    items: tuple[object, ...]
    provenance: LabelProvenance
    version: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False)
