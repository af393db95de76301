"""Prometheus metrics of the vehicle service, on a registry owned by the service (no globals).

Names follow ``avdata_vehicle_<what>_<unit>``; every drop is counted with the pipeline stage that
dropped it and a reason.

Each lost message is counted once, by the first stage that knows it, in pipeline order:

1. ``decode``: it arrived but its frames were refused (truncated, malformed, unknown version,
   oversized). When its header still names its stream and ``seq`` it keeps its place in the
   stream, so it is not also a socket gap; when it does not, it excuses one message of the next
   gap on its topic.
2. ``socket`` (``seq_gap``): it never arrived; ZeroMQ dropped it at a high-water mark, which shows
   only as skipped publisher sequence numbers not explained by step 1.
3. ``source`` (``missed_sample``): a time gap against the topic's expected rate, less the messages
   steps 1 and 2 already counted just before the message that revealed it; what is left was never
   sent (the sensor skipped a sample). ``stream_gaps`` still counts every gap as an event.

Messages that arrived and were then discarded are counted at the stage that discarded them:
``timesync`` (duplicate), ``buffer`` (no room without evicting a protected message), ``ring``
(evicted to meet the byte budget before ``max_age_s``), ``disk`` (a snapshot that could not be
written). ``trigger`` counts a buffered message the trigger rules could not read: it is kept, not lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from vehicle.errors import MetricsPortError


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

    def serve(self, host: str, port: int, key: str = "[metrics] port") -> None:
        """Expose ``/metrics`` over HTTP on ``host:port`` (a daemon thread of prometheus_client).

        Raises :class:`vehicle.errors.MetricsPortError` naming the address and the config ``key``
        that chose it when the port cannot be bound.
        """
        serve_metrics(self.registry, host, port, key)


def serve_metrics(registry: CollectorRegistry, host: str, port: int, key: str) -> None:
    """Serve ``registry`` on ``host:port``; a bind failure becomes :class:`MetricsPortError`."""
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise MetricsPortError(f"cannot serve /metrics on {host}:{port} ({key}): {why}; "
                               f"stop the process holding the port or choose another {key}") from exc
