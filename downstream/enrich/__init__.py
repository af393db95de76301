"""Enrichment components: what turns a stored segment into a findable one.

Pure functions and small classes over arrays and records, which the enrichment service (a
``segments.raw`` consumer) calls with what a segment and its processed outputs provide:

- :mod:`.bev`: the 256-d bird's-eye-view embedding of a motion-compensated sweep and its boxes;
- :mod:`.solar` and :mod:`.lighting`: the sun's position, lighting and time-of-day tags, and the
  camera-brightness cross-check;
- :mod:`.road`: road type and geometry from the map context, else the speed profile;
- :mod:`.traffic`: traffic density and agent types from tracks or detections;
- :mod:`.events`: triggers, hard brakes, cut-ins and out-of-distribution frames; :mod:`.corridor`
  places tracked objects along the ego's own path for them;
- :mod:`.tags`: the :class:`Tag` record and its ``name:value`` encoding for ``Segment.tags``;
- :mod:`.describe`: the :class:`Describer` Protocol and the default :class:`TemplateDescriber`;
- :mod:`.maps`: the :class:`MapProvider` Protocol, the Lanelet2, CommonRoad and AV2 readers, and
  the GNSS-box fallback;
- :mod:`.records`: the input records (scored frames, tracks, ego states); :mod:`.errors`.

The service around them (a ``segments.raw`` consumer, ``avdata-cloud enrich``):

- :mod:`.config`: the ``[enrich]`` table of ``enrich.toml`` and the settings fingerprint;
- :mod:`.inputs` and :mod:`.reader`: a segment's decoded inputs, read from the object store;
- :mod:`.visual`: the pooled ``visual_embedding`` and the :class:`ImageTextEncoder` Protocol;
- :mod:`.service` (pure orchestration) → :mod:`.result` (:class:`EnrichmentResult`, its document);
- :mod:`.outputs` (``processed/.../enrichment/v{N}.json``) and :mod:`.store` (the DB tables);
- :mod:`.metrics` (Prometheus). Not imported here (they start processes and open back-ends):
  :mod:`.runtime`, :mod:`.process` and :mod:`.cli`.
"""

from downstream.enrich.bev import (
    CHANNELS,
    BevGrid,
    BevProjector,
    array_module,
    bev_embedding,
    bev_raster,
    lidar_columns,
)
from downstream.enrich.config import ENRICHER, EnrichConfig, EnrichFile, MapFile, fingerprint, load_enrich_config
from downstream.enrich.corridor import PathCoords, path_coords
from downstream.enrich.describe import Describer, SceneFacts, TemplateDescriber
from downstream.enrich.errors import (
    BackendUnavailable,
    EnrichError,
    EnrichInputError,
    MapFormatError,
    MapQueryError,
    NotGeoreferenced,
    ProcessedMissing,
    SegmentInputError,
    SegmentNotFound,
    SnapshotUnreadable,
    TagFormatError,
    UnknownMapFormat,
    VersionConflict,
)
from downstream.enrich.events import (
    CutInRule,
    Event,
    anomalies,
    cut_ins,
    event_tags,
    hard_brakes,
    lead_vehicle,
    trigger_events,
)
from downstream.enrich.inputs import GnssFixes, Keyframe, Problem, SegmentInputs, Sweep, VisualFrames
from downstream.enrich.lighting import (
    LightingCheck,
    check_lighting,
    image_brightness,
    lighting_class,
    lighting_tags,
)
from downstream.enrich.maps import (
    FORMATS,
    GeoTrajectory,
    LocalTrajectory,
    MapContext,
    MapProvider,
    MapSet,
    gnss_box,
    open_map,
)
from downstream.enrich.metrics import EnrichMetrics
from downstream.enrich.outputs import output_key, read_output, write_output
from downstream.enrich.reader import SegmentReader, decode_keyframe
from downstream.enrich.records import Detected, EgoStates, ScoredFrame, Tracks
from downstream.enrich.result import EnrichmentResult
from downstream.enrich.road import road_geometry, road_tags, road_type_from_map, road_type_from_speed
from downstream.enrich.service import EnrichmentService, EnrichSettings
from downstream.enrich.solar import SolarCoordinates, SunPosition, solar_coordinates, sun_position, sun_positions
from downstream.enrich.store import (
    StoredEnrichment,
    failure_effect,
    failures,
    get_enrichment,
    migrate_enrich,
    register_version,
    status,
    write_effect,
)
from downstream.enrich.tags import DEFAULT_MIN_CONFIDENCE, Tag, TagSource, encode_tags, parse_tag
from downstream.enrich.traffic import (
    AGENT_KINDS,
    agent_kind,
    traffic_from_detections,
    traffic_from_tracks,
    traffic_tags,
)
from downstream.enrich.visual import POOLING, ImageTextEncoder, pool_embeddings

__all__ = [
    "AGENT_KINDS",
    "CHANNELS",
    "DEFAULT_MIN_CONFIDENCE",
    "ENRICHER",
    "FORMATS",
    "POOLING",
    "BackendUnavailable",
    "BevGrid",
    "BevProjector",
    "CutInRule",
    "Describer",
    "Detected",
    "EgoStates",
    "EnrichConfig",
    "EnrichError",
    "EnrichFile",
    "EnrichInputError",
    "EnrichMetrics",
    "EnrichSettings",
    "EnrichmentResult",
    "EnrichmentService",
    "Event",
    "GeoTrajectory",
    "GnssFixes",
    "ImageTextEncoder",
    "Keyframe",
    "LightingCheck",
    "LocalTrajectory",
    "MapContext",
    "MapFile",
    "MapFormatError",
    "MapProvider",
    "MapQueryError",
    "MapSet",
    "NotGeoreferenced",
    "PathCoords",
    "Problem",
    "ProcessedMissing",
    "SceneFacts",
    "ScoredFrame",
    "SegmentInputError",
    "SegmentInputs",
    "SegmentNotFound",
    "SegmentReader",
    "SnapshotUnreadable",
    "SolarCoordinates",
    "StoredEnrichment",
    "SunPosition",
    "Sweep",
    "Tag",
    "TagFormatError",
    "TagSource",
    "TemplateDescriber",
    "Tracks",
    "UnknownMapFormat",
    "VersionConflict",
    "VisualFrames",
    "agent_kind",
    "anomalies",
    "array_module",
    "bev_embedding",
    "bev_raster",
    "check_lighting",
    "cut_ins",
    "decode_keyframe",
    "encode_tags",
    "event_tags",
    "failure_effect",
    "failures",
    "fingerprint",
    "get_enrichment",
    "gnss_box",
    "hard_brakes",
    "image_brightness",
    "lead_vehicle",
    "lidar_columns",
    "lighting_class",
    "lighting_tags",
    "load_enrich_config",
    "migrate_enrich",
    "open_map",
    "output_key",
    "parse_tag",
    "path_coords",
    "pool_embeddings",
    "read_output",
    "register_version",
    "road_geometry",
    "road_tags",
    "road_type_from_map",
    "road_type_from_speed",
    "solar_coordinates",
    "status",
    "sun_position",
    "sun_positions",
    "traffic_from_detections",
    "traffic_from_tracks",
    "traffic_tags",
    "trigger_events",
    "write_effect",
    "write_output",
]
