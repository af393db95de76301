"""Errors of the HIL bench."""

from __future__ import annotations


class HilError(Exception):
    """Root of every error raised by the bench."""


class ProcessFailed(HilError):
    """A managed process exited early or never became ready; the message carries its log tail."""


class DemoFailed(HilError):
    """The demo loop did not produce the expected segments in time."""
