"""Prometheus metrics of one daemon, in the app's own registry (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Counters and histograms the daemon updates; :meth:`render` gives the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("avdata_cloud_requests", "HTTP requests by method and status",
                                ["method", "status"], registry=r)
        self.rejected = Counter("avdata_cloud_rejected", "Requests refused with a typed error, by reason",
                                ["reason"], registry=r)
        self.bytes_received = Counter("avdata_cloud_bytes_received", "Upload bytes written to disk",
                                      registry=r)
        self.uploads_created = Counter("avdata_cloud_uploads_created", "Uploads created", registry=r)
        self.uploads_completed = Counter("avdata_cloud_uploads_completed", "Uploads ingested", registry=r)
        self.duplicates = Counter("avdata_cloud_duplicates", "Uploads answered as already stored",
                                  registry=r)
        self.quarantined = Counter("avdata_cloud_quarantined", "Snapshots quarantined, by reason",
                                   ["reason"], registry=r)
        self.segments_created = Counter("avdata_cloud_segments_created", "Segments inserted", registry=r)
        self.uploads_expired = Counter("avdata_cloud_uploads_expired", "Uploads removed by the sweeper",
                                       registry=r)
        self.segments_joined = Counter("avdata_cloud_segments_joined", "Joined segments created from short "
                                       "adjacent ones", registry=r)
        self.segments_without_calibration = Counter(
            "avdata_cloud_segments_without_calibration", "Segments stored without a calibration bundle, by "
            "reason (vehicle_has_none, none_valid_at_start)", ["reason"], registry=r)
        self.calibration_input_errors = Counter(
            "avdata_cloud_calibration_input_errors", "Sensor data the calibrated pass could not use, by reason "
            "(lidar_malformed, radar_malformed, vehicle_state_malformed, pose_malformed, no_ego_motion)",
            ["reason"], registry=r)
        self.repaired = Counter("avdata_cloud_repaired", "Work finished by the repair pass, by kind "
                                "(stalled_upload, processed_outputs, orphan_file)", ["kind"], registry=r)
        self.ingest_seconds = Histogram(
            "avdata_cloud_ingest_seconds", "Completion latency: last byte to durable acknowledgement",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), registry=r)
        self.patch_seconds = Histogram(
            "avdata_cloud_patch_seconds", "PATCH request latency",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
