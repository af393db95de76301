"""Prometheus counters of one enrichment process, served on ``/metrics`` (see :mod:`.process`).

Each thing is counted once, at the first stage that knows it: a segment's outcome when its effect
commits (``enriched``, ``failed``, or ``duplicate`` for a delivery the inbox already held), a failure
by its reason, a problem of an input that did not stop the segment by its reason, a backend error
by the stage that met it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class EnrichMetrics:
    """The counters; a registry of their own, so several processes' worth can live in one test."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.segments = Counter("avdata_enrich_segments", "Segment deliveries by outcome (enriched, failed, "
                                "duplicate)", ["outcome"], registry=r)
        self.failures = Counter("avdata_enrich_failures", "Segments recorded as not enrichable, by reason",
                                ["reason"], registry=r)
        self.input_problems = Counter("avdata_enrich_input_problems", "Bad or missing inputs met while "
                                      "enriching (the segment went on without them), by reason", ["reason"],
                                      registry=r)
        self.backend_errors = Counter("avdata_enrich_backend_errors", "DB, store or queue errors (retried), by "
                                      "stage", ["stage"], registry=r)
        self.outputs_written = Counter("avdata_enrich_outputs_written", "Processed documents written (an "
                                       "existing one is reused, not counted)", registry=r)
        self.malformed = Gauge("avdata_enrich_feed_malformed", "Queue messages that were not announcements",
                               registry=r)
        self.seconds = Histogram("avdata_enrich_segment_seconds", "Wall time of one segment's enrichment (s)",
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=r)
        self.last_enriched = Gauge("avdata_enrich_last_enriched_unixtime", "When a segment was last enriched",
                                   registry=r)

    def value(self, name: str, **labels: str) -> float:
        """One sample's value (0.0 when it has none yet)."""
        return self.registry.get_sample_value(name, labels or None) or 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
