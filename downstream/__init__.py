"""The services that consume segments: enrichment and mining, then labeling, datasets and evaluation.

Each service is a subpackage and a consumer of ``segments.raw`` (:mod:`cloud_ingest.queue`):
idempotent per segment, with a durable inbox so that a restart applies nothing twice. The ingest
daemon never imports this package; :mod:`downstream.cli` and :mod:`downstream.app` are the
composition roots that add the services' commands and HTTP routes to ``avdata-cloud``.
"""

__all__ = ["app", "cli", "migrations"]
