"""Reports: failures clustered by signature, deterministic JSON, readable Markdown, baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simulator_harness.modes.report import (
    Outcome,
    ReportError,
    build_report,
    cluster_failures,
    passed_names,
    to_json,
    to_markdown,
    write_report,
)

CELL_A = ("straight_multilane", "cut_in", "car", "clear_day", "clear")
CELL_B = ("signalised_intersection", "crossing_traffic_violation", "car", "clear_day", "clear")


def outcome(name: str, failed: tuple[str, ...] = (), cell: tuple[str, ...] = CELL_A, event: str = "cut_in",
            plausible: bool = True, ttc: float = math.inf) -> Outcome:
    return Outcome(name, cell, event, {"min_ttc": ttc, "collision": float("collision" in failed)}, failed, plausible)


OUTCOMES = [
    outcome("a", ("collision", "min_ttc"), ttc=0.0), outcome("b", ("collision", "min_ttc"), ttc=0.0),
    outcome("c", ("min_ttc",), ttc=0.6), outcome("d", ("collision",), CELL_B, "red_light_runner", ttc=0.0),
    outcome("e"), outcome("f", ("collision",), plausible=False),
]


def test_failures_cluster_by_check_event_and_cell() -> None:
    clusters = cluster_failures(OUTCOMES, max_examples=2)
    table = {c.signature: (c.count, c.examples) for c in clusters}
    assert table[("min_ttc", "cut_in", "/".join(CELL_A))] == (3, ("a", "b"))
    assert table[("collision", "cut_in", "/".join(CELL_A))] == (2, ("a", "b"))  # f is implausible: not counted
    assert table[("collision", "red_light_runner", "/".join(CELL_B))] == (1, ("d",))
    assert [c.count for c in clusters] == sorted((c.count for c in clusters), reverse=True)


def test_report_json_is_deterministic_and_valid(tmp_path: Path) -> None:
    report = build_report("regress", "suite", 7, OUTCOMES, {"policy": "idm"})
    assert report.summary | {} == {"scenarios": 6, "passed": 1, "failed": 4, "implausible": 1, "policy": "idm"}
    text = to_json(report)
    assert text == to_json(build_report("regress", "suite", 7, list(OUTCOMES), {"policy": "idm"}))
    doc = json.loads(text)  # strict JSON: infinities are written as strings
    assert doc["outcomes"][4]["metrics"]["min_ttc"] == "inf" and doc["outcomes"][4]["passed"] is True
    json_path, md_path = write_report(report, tmp_path / "out")
    assert json_path.read_text() == text and not list((tmp_path / "out").glob("*.tmp"))
    assert passed_names(json_path) == {"e"}
    md = md_path.read_text()
    assert md.startswith("# suite") and "| min_ttc | cut_in | straight_multilane/cut_in/car/clear_day/clear | 3 |" in md


def test_markdown_says_when_nothing_failed() -> None:
    md = to_markdown(build_report("search", "quiet", 0, [outcome("ok")], {}))
    assert "No plausible scenario failed." in md and "Failing scenarios" not in md


def test_a_bad_baseline_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text('{"schema": "something.else", "version": 1}')
    with pytest.raises(ReportError, match=r"not a avdata\.SimReport"):
        passed_names(path)
    path.write_text("{broken")
    with pytest.raises(ReportError, match="cannot read baseline"):
        passed_names(path)
