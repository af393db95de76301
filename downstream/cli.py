"""``avdata-cloud``: the ingest daemon's commands plus those of the downstream services.

This is the console script's composition root: :func:`cloud_ingest.cli.main.main` with the app of
:mod:`downstream.app` and every service's subcommands in :data:`EXTENSIONS`.
"""

from __future__ import annotations

from cloud_ingest.cli.main import Extension
from cloud_ingest.cli.main import main as ingest_main
from downstream.app import create_app
from downstream.enrich import cli as enrich_cli

#: Each entry adds one service's subcommands to the parser.
EXTENSIONS: tuple[Extension, ...] = (enrich_cli.add_commands,)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``avdata-cloud``; returns the process exit status."""
    return ingest_main(argv, app_factory=create_app, extensions=EXTENSIONS)


if __name__ == "__main__":
    raise SystemExit(main())
