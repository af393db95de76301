"""The cloud daemon with the downstream services' HTTP routes: ``create_app(config)``.

:func:`cloud_ingest.app.create_app` builds the ingest daemon; each downstream service adds its
routes and the resources they need (as ``cleanup_ctx`` entries) through :data:`ROUTES`. The ingest
daemon itself never imports this module: ``avdata-cloud serve`` runs this app when started through
:mod:`downstream.cli` (the console script).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from cloud_ingest.app import create_app as create_ingest_app
from cloud_ingest.config import CloudConfig

#: Each entry adds one service's routes and resources to the application.
ROUTES: tuple[Callable[[web.Application], None], ...] = ()


def create_app(config: CloudConfig) -> web.Application:
    """The ingest daemon's application plus every downstream service's routes."""
    app = create_ingest_app(config)
    for add in ROUTES:
        add(app)
    return app
