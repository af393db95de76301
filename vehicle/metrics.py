"""Prometheus metrics of the vehicle service, on a registry owned by the service (no globals).

Names follow ``avdata_vehicle_<what>_<unit>``; every drop is counted with the pipeline stage that
dropped it (``decode``, ``timesync``, ``buffer``, ``trigger``, ``disk``) and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class VehicleMetrics:
    """All counters and gauges of one service instance."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        p = "avdata_vehicle_"
        self.messages = Counter(p + "messages_received", "Sensor messages accepted, by topic",
                                ["topic"], registry=r)
        self.bytes_received = Counter(p + "payload_bytes_received", "Payload bytes accepted, by topic",
                                      ["topic"], registry=r)
        self.drops = Counter(p + "drops", "Messages dropped, by pipeline stage and reason",
                             ["stage", "reason"], registry=r)
        self.evictions = Counter(p + "buffer_evictions", "Messages evicted from the ring buffer",
                                 ["topic", "cause"], registry=r)
        self.buffer_bytes = Gauge(p + "buffer_bytes", "Payload bytes held in the ring buffer", registry=r)
        self.buffer_fill = Gauge(p + "buffer_fill_ratio", "Ring buffer bytes / max_bytes", registry=r)
        self.gaps = Counter(p + "stream_gaps", "Gaps against a topic's expected rate", ["topic"],
                            registry=r)
        self.reordered = Counter(p + "messages_reordered", "Messages older than their topic's newest",
                                 ["topic"], registry=r)
        self.clock_offset = Gauge(p + "clock_offset_seconds", "Estimated t_recv - t_sensor", ["topic"],
                                  registry=r)
        self.clock_drift = Gauge(p + "clock_drift_ppm", "Estimated sensor clock drift", ["topic"],
                                 registry=r)
        self.triggers = Counter(p + "triggers", "Trigger events fired, by kind", ["kind"], registry=r)
        self.snapshots = Counter(p + "snapshots", "Snapshots cut, by result", ["result"], registry=r)
        self.snapshot_seconds = Histogram(p + "snapshot_write_seconds", "Time to write one snapshot",
                                          registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "Snapshots in the upload queue, by state", ["state"],
                                 registry=r)
        self.queue_evictions = Counter(p + "queue_evictions", "Snapshots evicted by the disk budget or a full disk",
                                       registry=r)
        self.disk_full = Counter(p + "disk_full", "Snapshot writes that hit a full disk, by outcome "
                                 "(retried after evicting, or dropped)", ["outcome"], registry=r)
        self.clock_steps = Counter(p + "clock_steps", "Sensor clock steps detected (offset jumps), by topic",
                                   ["topic"], registry=r)
        self.bytes_sent = Counter(p + "upload_bytes_sent", "Payload bytes sent in PATCH requests",
                                  registry=r)
        self.uploads = Counter(p + "uploads", "Upload outcomes", ["result"], registry=r)
        self.upload_retries = Counter(p + "upload_retries", "Upload attempts retried", ["cause"],
                                      registry=r)

    def drop(self, stage: str, reason: str, n: int = 1) -> None:
        """Count ``n`` messages dropped at ``stage`` for ``reason``."""
        self.drops.labels(stage=stage, reason=reason).inc(n)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of a sample (``name`` as exported, e.g. ``..._drops_total``); 0 if absent."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else got

    def serve(self, host: str, port: int) -> None:
        """Expose ``/metrics`` over HTTP on ``host:port`` (a daemon thread of prometheus_client)."""
        start_http_server(port, addr=host, registry=self.registry)
