"""What a snapshot must contain, computed from the simulator's publish log."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hil.demo import DemoResult

VIDEO_TOPICS = {"camera/front"}


def published(result: DemoResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.publish_log.read_text().splitlines() if line.strip()]


def expected_counts(rows: list[dict[str, Any]], start_ns: int, end_ns: int) -> Counter[str]:
    """Every message in [start, end]; video from the last keyframe at or before start."""
    counts: Counter[str] = Counter()
    for topic in {str(p["topic"]) for p in rows}:
        mine = [p for p in rows if p["topic"] == topic]
        first = start_ns
        if topic in VIDEO_TOPICS:
            keys = [int(p["t_sensor_ns"]) for p in mine if p["keyframe"] and int(p["t_sensor_ns"]) <= start_ns]
            first = max(keys) if keys else start_ns
        counts[topic] = sum(1 for p in mine if first <= int(p["t_sensor_ns"]) <= end_ns)
    return counts
