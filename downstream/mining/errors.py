"""Errors of the mining service: one root, :class:`MiningError`, and a few precise subclasses.

Each carries a short machine-readable ``reason`` (a metrics label). Messages are one line that
says what was wrong and what to do.
"""

from __future__ import annotations


class MiningError(Exception):
    """Root of every error raised by :mod:`downstream.mining`."""

    reason: str = "mining_error"


class BadVectors(MiningError):
    """Vectors of the wrong shape or dimension, or not finite, or of zero length (no direction)."""

    reason = "bad_vectors"


class BadMetadata(MiningError):
    """Metadata or a filter that breaks the index's rules (a bad name, an inverted time range...)."""

    reason = "bad_metadata"


class UnknownId(MiningError):
    """An id that the index does not hold (never added, or deleted)."""

    reason = "unknown_id"


class IndexCorrupt(MiningError):
    """An index directory that cannot be read back: missing or damaged files, a foreign format."""

    reason = "index_corrupt"


class UnknownBackend(MiningError):
    """A vector index back-end name that the registry does not know."""

    reason = "unknown_backend"


class BackendUnavailable(MiningError):
    """The back-end's client library is not installed, or its server cannot be reached."""

    reason = "backend_unavailable"
