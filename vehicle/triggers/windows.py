"""Snapshot windows: trigger events merged into pending windows, cut once they are complete.

A window ``[start_ns, end_ns]`` is complete when a vehicle-state message later than ``end_ns``
has been seen (the caller passes that time to :meth:`WindowPlanner.due`). Windows that overlap
merge into one, keeping every trigger event; a trigger can bridge two windows into one.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.triggers import TriggerEvent


@dataclass(frozen=True, slots=True)
class PendingWindow:
    """A snapshot to cut: the merged window (ns, vehicle clock) and the events that asked for it."""

    start_ns: int
    end_ns: int
    triggers: tuple[TriggerEvent, ...]

    @property
    def priority(self) -> int:
        return max((t.priority for t in self.triggers), default=0)


class WindowPlanner:
    """Holds pending windows, sorted by start and never overlapping each other."""

    def __init__(self) -> None:
        self._pending: list[PendingWindow] = []

    @property
    def pending(self) -> tuple[PendingWindow, ...]:
        return tuple(self._pending)

    def add(self, event: TriggerEvent) -> PendingWindow:
        """Merge ``event`` into the pending windows; returns the window that now holds it."""
        merged = PendingWindow(event.start_ns, event.end_ns, (event,))
        keep: list[PendingWindow] = []
        for w in self._pending:
            if w.start_ns <= merged.end_ns and merged.start_ns <= w.end_ns:
                merged = PendingWindow(min(w.start_ns, merged.start_ns), max(w.end_ns, merged.end_ns),
                                       tuple(sorted(w.triggers + merged.triggers, key=lambda t: t.t_ns)))
            else:
                keep.append(w)
        keep.append(merged)
        self._pending = sorted(keep, key=lambda w: w.start_ns)
        return merged

    def due(self, now_ns: int) -> list[PendingWindow]:
        """Remove and return the windows that end before ``now_ns``."""
        ready = [w for w in self._pending if w.end_ns < now_ns]
        self._pending = [w for w in self._pending if w.end_ns >= now_ns]
        return ready

    def drain(self) -> list[PendingWindow]:
        """Remove and return every pending window (at shutdown: cut what is buffered)."""
        out, self._pending = self._pending, []
        return out
