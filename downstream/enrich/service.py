"""One segment's enrichment, from decoded inputs to an :class:`EnrichmentResult` (pure: no I/O).

:class:`EnrichmentService` runs the components in turn on a :class:`SegmentInputs`:

- ``visual_embedding``: :func:`.visual.pool_embeddings` of the vehicle's per-frame embeddings;
  plus the cloud encoder's keyframe embedding when an :class:`ImageTextEncoder` is given;
- ``bev_embedding``: :func:`.bev.bev_embedding` of the sweep nearest the segment's middle (one
  sweep, not a pool: the raster is in the vehicle frame, and sweeps taken metres apart would smear
  into each other), with the tracked boxes at its time when there are tracks;
- map context: the first map covering the GNSS track, else the GNSS box marked as not covered;
- tags: lighting and time of day from the sun at the median GNSS fix, checked against the keyframe's
  brightness; road type from the map, else the speed profile; traffic and agent kinds from tracks,
  else the per-frame detections; triggers, hard brakes (vehicle state), cut-ins (tracks) and
  out-of-distribution frames (``ood_ratio`` above :attr:`EnrichSettings.ood_ratio_threshold`);
- ``language_description``: the :class:`Describer` (the template one by default) over the tags
  and events.

A component whose input is missing is left out and said in ``problems``; a component that raises
an :class:`~downstream.enrich.errors.EnrichError` on its input is left out the same way (its
``reason`` is counted): one bad stream never costs the segment its other outputs. The GNSS clock is
taken as UTC (vehicle clocks are disciplined to it); lighting is only as right as that clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from downstream.enrich.bev import BevProjector, bev_embedding
from downstream.enrich.describe import Describer, SceneFacts, TemplateDescriber
from downstream.enrich.errors import EnrichError
from downstream.enrich.events import Event, anomalies, cut_ins, event_tags, hard_brakes, trigger_events
from downstream.enrich.inputs import Problem, SegmentInputs
from downstream.enrich.lighting import check_lighting, lighting_tags
from downstream.enrich.maps.context import GeoTrajectory, MapContext
from downstream.enrich.maps.registry import MapSet
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.road import road_tags
from downstream.enrich.tags import Tag
from downstream.enrich.traffic import traffic_tags
from downstream.enrich.visual import POOLING, ImageTextEncoder, pool_embeddings
from shared.segment import VISUAL_EMBEDDING_DIM


@dataclass(frozen=True)
class EnrichSettings:
    """What decides an enricher version's outputs (see :class:`downstream.enrich.config.EnrichConfig`)."""

    version: int = 1
    enricher: str = "avdata.downstream.enrich/1"
    fingerprint: str = ""
    map_radius_m: float = 50.0
    ood_ratio_threshold: float = 1.0


@dataclass
class _Work:
    problems: list[Problem] = field(default_factory=list)

    def skip(self, reason: str, detail: str) -> None:
        self.problems.append(Problem(reason, detail))


class EnrichmentService:
    """Segment inputs → :class:`EnrichmentResult` (see the module docstring)."""

    def __init__(self, settings: EnrichSettings | None = None, maps: MapSet | None = None,
                 describer: Describer | None = None, projector: BevProjector | None = None,
                 encoder: ImageTextEncoder | None = None) -> None:
        self.settings = settings or EnrichSettings()
        self.maps = maps or MapSet(())
        self.describer = describer or TemplateDescriber()
        self.projector = projector or BevProjector()
        self.encoder = encoder

    def _visual(self, inputs: SegmentInputs, work: _Work) -> tuple[np.ndarray | None, int, str]:
        vis = inputs.visual
        if vis is None or not vis.frames:
            work.skip("no_model_scores", "the segment has no model/scores frames: no visual embedding")
            return None, 0, ""
        if vis.embeddings.shape[1] != VISUAL_EMBEDDING_DIM:
            work.skip("embedding_dim", f"the vehicle's embeddings have {vis.embeddings.shape[1]} dimensions, "
                                       f"the segment contract {VISUAL_EMBEDDING_DIM}: no visual embedding")
            return None, 0, ""
        pooled = pool_embeddings(vis.embeddings)
        if pooled is None:
            work.skip("embedding_degenerate", "no finite, non-zero per-frame embedding to pool")
        return pooled, len(vis.frames), f"{POOLING}:{'+'.join(vis.models)}"

    def _bev(self, inputs: SegmentInputs, work: _Work) -> tuple[np.ndarray | None, int | None]:
        sweep = inputs.sweep
        if sweep is None:
            return None, None
        boxes = None
        if inputs.tracks is not None and inputs.tracks.t_ns.size:
            boxes = inputs.tracks.boxes_at(inputs.tracks.time_index(sweep.t_ns))
        try:
            return bev_embedding(sweep.points, boxes, self.projector), sweep.t_ns
        except EnrichError as exc:
            work.skip(exc.reason, f"BEV of {sweep.topic} at {sweep.t_ns}: {exc}")
            return None, None

    def _map(self, inputs: SegmentInputs, work: _Work) -> MapContext | None:
        if inputs.gnss is None:
            work.skip("no_gnss", "the segment has no valid GNSS fix: no map context, no lighting")
            return None
        try:
            return self.maps.context_or_box(GeoTrajectory(inputs.gnss.lat_deg, inputs.gnss.lon_deg),
                                            self.settings.map_radius_m)
        except EnrichError as exc:
            work.skip(exc.reason, f"map context: {exc}")
            return None

    def _lighting(self, inputs: SegmentInputs, work: _Work) -> list[Tag]:
        if inputs.gnss is None:
            return []
        g = inputs.gnss
        try:
            light, period = lighting_tags(g.t_ns, g.lat_deg, g.lon_deg)
        except EnrichError as exc:
            work.skip(exc.reason, f"lighting: {exc}")
            return []
        if inputs.keyframe is None:
            return [light, period]
        try:
            checked = check_lighting(light, [inputs.keyframe.rgb])
        except EnrichError as exc:
            work.skip(exc.reason, f"brightness check: {exc}")
            return [light, period]
        return [checked.lighting, period, *([checked.check] if checked.check is not None else [])]

    def _events(self, inputs: SegmentInputs, work: _Work) -> list[Event]:
        events = list(trigger_events(inputs.segment.triggers))
        tracks = inputs.tracks
        try:
            if inputs.ego is not None and inputs.ego.t_ns.size:
                events += hard_brakes(inputs.ego, tracks)
            if tracks is not None:
                events += cut_ins(tracks, inputs.ego)
            events += anomalies(inputs.frames, self.settings.ood_ratio_threshold)
        except EnrichError as exc:
            work.skip(exc.reason, f"events: {exc}")
        return sorted(events, key=lambda e: (e.t_ns, e.kind))

    def enrich(self, inputs: SegmentInputs, now_ns: int = 0) -> EnrichmentResult:
        """The enrichment of ``inputs.segment``; ``now_ns`` is recorded as ``enriched_ns``."""
        work = _Work(list(inputs.problems))
        seg = inputs.segment
        visual, n_frames, visual_source = self._visual(inputs, work)
        bev, bev_t = self._bev(inputs, work)
        image_text = None
        if self.encoder is not None and inputs.keyframe is not None:
            image_text = np.asarray(self.encoder.encode_images([inputs.keyframe.rgb])[0], dtype=np.float32)
        ctx = self._map(inputs, work)
        tags = self._lighting(inputs, work)
        try:
            covered = ctx if ctx is not None and ctx.covered else None
            if covered is not None or inputs.ego is not None:
                tags += road_tags(covered, inputs.ego)
            tags += traffic_tags(inputs.frames, inputs.tracks)
        except EnrichError as exc:
            work.skip(exc.reason, f"road or traffic tags: {exc}")
        events = self._events(inputs, work)
        tags += event_tags(events)
        facts = SceneFacts(tuple(tags), tuple(events), () if inputs.keyframe is None else (inputs.keyframe.rgb,))
        s = self.settings
        return EnrichmentResult(
            segment_id=seg.segment_id, enricher_version=s.version, enricher=s.enricher, fingerprint=s.fingerprint,
            vehicle_id=seg.vehicle_id, start_ns=seg.start_ns, end_ns=seg.end_ns, source=seg.source.value,
            visual_embedding=visual, visual_frames=n_frames, visual_source=visual_source, bev_embedding=bev,
            bev_sweep_t_ns=bev_t, image_text_embedding=image_text,
            image_text_model=self.encoder.name if self.encoder is not None and image_text is not None else "",
            tags=tuple(sorted(tags, key=lambda t: (t.name, t.value, t.source.value))), events=tuple(events),
            description=self.describer.describe(facts), describer=self.describer.name, map_context=ctx,
            problems=tuple(work.problems), enriched_ns=now_ns)
