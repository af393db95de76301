"""Errors raised when decoding or validating a shared contract.

One root, :class:`ContractError`, and a few precise subclasses, so a receiver can count
each kind of bad input separately and keep running.
"""

from __future__ import annotations


class ContractError(Exception):
    """Root of every error raised by the ``shared`` package."""

    #: Short machine-readable label, used as a metrics label and in quarantine reasons.
    reason: str = "contract_error"


class MalformedMessage(ContractError):
    """The bytes decode, but not into the shape the contract promises."""

    reason = "malformed"


class TruncatedMessage(ContractError):
    """The bytes end before the encoded structure does."""

    reason = "truncated"


class UnknownVersion(ContractError):
    """The message names a contract version this build cannot read."""

    reason = "unknown_version"


class OversizedMessage(ContractError):
    """The message is larger than the receiver's configured limit."""

    reason = "oversized"


class SnapshotError(ContractError):
    """A snapshot file is unreadable, incomplete or disagrees with its manifest."""

    reason = "snapshot_invalid"
