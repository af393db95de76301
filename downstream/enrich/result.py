"""What one enricher version says about one segment: :class:`EnrichmentResult` and its JSON document.

The document (:meth:`EnrichmentResult.to_body`, schema :data:`SCHEMA`) is the segment's
``processed/{date}/{segment}/enrichment/v{N}.json``; the metadata DB rows are made from it
(:mod:`.store`), so the two always agree. Embeddings travel as JSON lists of the float32 values
(exact: every float32 is a double, and ``json`` writes doubles round-trip). :meth:`apply_to` gives
the enriched :class:`~shared.segment.Segment` (the seed schema's embeddings, description, tags and
map context filled in) for consumers that speak that contract.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.enrich.events import Event
from downstream.enrich.inputs import Problem
from downstream.enrich.maps.context import MapContext
from downstream.enrich.tags import DEFAULT_MIN_CONFIDENCE, Tag, TagSource, encode_tags
from shared.errors import MalformedMessage
from shared.segment import BEV_EMBEDDING_DIM, VISUAL_EMBEDDING_DIM, Segment

SCHEMA = "avdata.Enrichment/1"
Vector = npt.NDArray[np.float32]


def _vector(value: Any, dim: int | None, name: str) -> Vector | None:
    if value is None:
        return None
    a = np.asarray(value, dtype=np.float32)
    if a.ndim != 1 or (dim is not None and a.shape != (dim,)):
        raise MalformedMessage(f"{SCHEMA}: {name} must be {dim or 'N'} numbers, got shape {a.shape}")
    return a


def _list(a: Vector | None) -> list[float] | None:
    return None if a is None else [float(v) for v in a]


@dataclass(frozen=True, eq=False)
class EnrichmentResult:
    """One version's enrichment of one segment. Times are vehicle-clock ns.

    ``visual_embedding`` ``(512,)`` unit norm: the pooled per-frame embeddings of ``visual_frames``
    frames (``visual_source`` names the pooling and the vehicle's model). ``bev_embedding``
    ``(256,)`` unit norm: the sweep at ``bev_sweep_t_ns``. ``image_text_embedding``: a cloud
    encoder's embedding of the keyframe (``image_text_model``), absent without one. Each is
    ``None`` when its input was missing; ``problems`` says why. ``map_context`` is the full context
    (the GNSS box, marked as such, where no map covers; ``None`` without GNSS fixes).
    """

    segment_id: str
    enricher_version: int
    enricher: str
    fingerprint: str
    vehicle_id: str
    start_ns: int
    end_ns: int
    source: str
    visual_embedding: Vector | None
    visual_frames: int
    visual_source: str
    bev_embedding: Vector | None
    bev_sweep_t_ns: int | None
    image_text_embedding: Vector | None
    image_text_model: str
    tags: tuple[Tag, ...]
    events: tuple[Event, ...]
    description: str
    describer: str
    map_context: MapContext | None
    problems: tuple[Problem, ...]
    enriched_ns: int

    def __post_init__(self) -> None:
        for name, emb, dim in (("visual_embedding", self.visual_embedding, VISUAL_EMBEDDING_DIM),
                               ("bev_embedding", self.bev_embedding, BEV_EMBEDDING_DIM)):
            if emb is not None and emb.shape != (dim,):
                raise MalformedMessage(f"enrichment of {self.segment_id}: {name} must have shape ({dim},)")

    def segment_tags(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> tuple[str, ...]:
        """The ``name:value`` tags at or above ``min_confidence`` (what ``Segment.tags`` gets)."""
        return encode_tags(self.tags, min_confidence)

    def map_summary(self) -> dict[str, Any]:
        """``MapContext.summary()``, or ``{"source": "none"}`` without GNSS."""
        return self.map_context.summary() if self.map_context is not None else {"source": "none", "covered": False}

    def apply_to(self, segment: Segment, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Segment:
        """``segment`` with this enrichment's embeddings, description, tags and map summary."""
        if segment.segment_id != self.segment_id:
            raise ValueError(f"enrichment of {self.segment_id} applied to segment {segment.segment_id}")
        return dataclasses.replace(
            segment, visual_embedding=self.visual_embedding, bev_embedding=self.bev_embedding,
            language_description=self.description,
            tags=tuple(sorted(set(segment.tags) | set(self.segment_tags(min_confidence)))),
            map_context={**segment.map_context, "enrichment": self.map_summary()})

    def to_body(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        return {
            "schema": SCHEMA, "segment_id": self.segment_id, "enricher_version": self.enricher_version,
            "enricher": self.enricher, "fingerprint": self.fingerprint, "vehicle_id": self.vehicle_id,
            "start_ns": self.start_ns, "end_ns": self.end_ns, "source": self.source,
            "visual_embedding": _list(self.visual_embedding), "visual_frames": self.visual_frames,
            "visual_source": self.visual_source, "bev_embedding": _list(self.bev_embedding),
            "bev_sweep_t_ns": self.bev_sweep_t_ns, "image_text_embedding": _list(self.image_text_embedding),
            "image_text_model": self.image_text_model, "tags": [t.to_body() for t in self.tags],
            "events": [dataclasses.asdict(e) | {"source": e.source.value} for e in self.events],
            "description": self.description, "describer": self.describer,
            "map_context": None if self.map_context is None else self.map_context.to_body(),
            "map_summary": self.map_summary(),
            "problems": [{"reason": p.reason, "detail": p.detail} for p in self.problems],
            "enriched_ns": self.enriched_ns,
        }

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> EnrichmentResult:
        """The inverse of :meth:`to_body`; raises :class:`MalformedMessage` on a document it cannot read."""
        if not isinstance(b, dict) or b.get("schema") != SCHEMA:
            raise MalformedMessage(f"not an {SCHEMA} document")
        try:
            ctx = b["map_context"]
            return cls(
                segment_id=str(b["segment_id"]), enricher_version=int(b["enricher_version"]),
                enricher=str(b["enricher"]), fingerprint=str(b["fingerprint"]), vehicle_id=str(b["vehicle_id"]),
                start_ns=int(b["start_ns"]), end_ns=int(b["end_ns"]), source=str(b["source"]),
                visual_embedding=_vector(b["visual_embedding"], VISUAL_EMBEDDING_DIM, "visual_embedding"),
                visual_frames=int(b["visual_frames"]), visual_source=str(b["visual_source"]),
                bev_embedding=_vector(b["bev_embedding"], BEV_EMBEDDING_DIM, "bev_embedding"),
                bev_sweep_t_ns=None if b["bev_sweep_t_ns"] is None else int(b["bev_sweep_t_ns"]),
                image_text_embedding=_vector(b["image_text_embedding"], None, "image_text_embedding"),
                image_text_model=str(b["image_text_model"]), tags=tuple(Tag.from_body(t) for t in b["tags"]),
                events=tuple(Event(**{**e, "source": TagSource(e["source"])}) for e in b["events"]),
                description=str(b["description"]), describer=str(b["describer"]),
                map_context=None if ctx is None else MapContext.from_body(ctx),
                problems=tuple(Problem(str(p["reason"]), str(p["detail"])) for p in b["problems"]),
                enriched_ns=int(b["enriched_ns"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"{SCHEMA} document is malformed: {exc!r}") from exc
