"""``avdata-cloud``: run the ingest daemon and the relay, manage vehicles, operators and
calibration, inspect segments. :func:`main` is the console script; :mod:`.admin` holds the
administration subcommands.
"""

from cloud_ingest.cli.main import main

__all__ = ["main"]
