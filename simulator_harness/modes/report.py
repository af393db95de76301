"""Reports of the regression, search and risk modes: JSON for machines, Markdown for people.

A report lists one :class:`Outcome` per simulated scenario and clusters the failures by signature
``(check that failed, first event kind, taxonomy cell)`` with a count and a few examples, so a
hundred failures of one kind read as one line. Building a report and rendering it are pure; the
JSON is deterministic (sorted keys, no clock), so the same run gives the same bytes.
:func:`write_report` is the one writer.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator_harness.errors import SimulatorError

SCHEMA = "avdata.SimReport"
VERSION = 1


class ReportError(SimulatorError, ValueError):
    """A report (or a baseline) is unreadable or of an unknown version."""

    reason = "bad_report"


@dataclass(frozen=True)
class Outcome:
    """One simulated scenario: its ODD ``cell``, first ``event`` kind (``none``), metric values,
    the pass/fail ``failed`` checks (empty: passed), the plausibility verdict, and the values of
    any varied parameters."""

    name: str
    cell: tuple[str, ...]
    event: str
    metrics: dict[str, float]
    failed: tuple[str, ...]
    plausible: bool
    gate_reasons: tuple[str, ...] = ()
    params: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Plausible and no check failed."""
        return self.plausible and not self.failed

    @property
    def counts_as_failure(self) -> bool:
        """A plausible scenario with a failed check (implausible ones are not the policy's fault)."""
        return self.plausible and bool(self.failed)


@dataclass(frozen=True)
class Cluster:
    """Failures sharing one ``signature`` ``(check, event, cell)``: how many, and a few names."""

    signature: tuple[str, str, str]
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """A mode's result: ``summary`` holds its headline numbers (plain JSON values)."""

    mode: str
    title: str
    seed: int
    summary: dict[str, Any]
    outcomes: tuple[Outcome, ...]
    clusters: tuple[Cluster, ...]
    notes: tuple[str, ...] = ()


def cluster_failures(outcomes: list[Outcome] | tuple[Outcome, ...], max_examples: int = 3) -> tuple[Cluster, ...]:
    """Group every failed check of every plausible failing outcome by signature, largest first."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for o in outcomes:
        if o.counts_as_failure:
            for check in o.failed:
                groups[(check, o.event, "/".join(o.cell))].append(o.name)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return tuple(Cluster(sig, len(names), tuple(names[:max_examples])) for sig, names in ordered)


def build_report(mode: str, title: str, seed: int, outcomes: list[Outcome], summary: dict[str, Any],
                 notes: tuple[str, ...] = ()) -> Report:
    """A report with the standard counts added to ``summary`` and the failures clustered."""
    counts = {"scenarios": len(outcomes), "passed": sum(o.passed for o in outcomes),
              "failed": sum(o.counts_as_failure for o in outcomes),
              "implausible": sum(not o.plausible for o in outcomes)}
    return Report(mode, title, seed, {**counts, **summary}, tuple(outcomes), cluster_failures(outcomes), notes)


def _plain(value: Any) -> Any:
    """JSON-safe values: floats to 10 significant digits, non-finite ones the strings ``inf``/``-inf``/``nan``."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return float(f"{value:.10g}")  # batch composition may move the last bits; reports must not
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain data (see :func:`to_json`)."""
    doc: dict[str, Any] = _plain({
        "schema": SCHEMA, "version": VERSION, "mode": report.mode, "title": report.title, "seed": report.seed,
        "summary": report.summary, "notes": list(report.notes),
        "clusters": [{"check": c.signature[0], "event": c.signature[1], "cell": c.signature[2],
                      "count": c.count, "examples": list(c.examples)} for c in report.clusters],
        "outcomes": [{"name": o.name, "cell": list(o.cell), "event": o.event, "passed": o.passed,
                      "plausible": o.plausible, "failed": list(o.failed), "metrics": o.metrics,
                      "gate_reasons": list(o.gate_reasons), "params": o.params} for o in report.outcomes],
    })
    return doc


def to_json(report: Report) -> str:
    """Deterministic JSON: sorted keys, two-space indent, floats to 10 significant digits."""
    return json.dumps(to_dict(report), indent=2, sort_keys=True) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(report: Report, max_rows: int = 20) -> str:
    """A readable summary: headline numbers, the failure clusters, and the first failing scenarios."""
    lines = [f"# {report.title}", "", f"Mode `{report.mode}`, seed {report.seed}.", "", "| figure | value |",
             "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report.summary.items() if not isinstance(v, dict | list)]
    lines += ["", "## Failures by signature", ""]
    if report.clusters:
        lines += ["| check | event | taxonomy cell | count | examples |", "|---|---|---|---|---|"]
        lines += [f"| {c.signature[0]} | {c.signature[1]} | {c.signature[2]} | {c.count} | "
                  f"{', '.join(c.examples)} |" for c in report.clusters[:max_rows]]
    else:
        lines.append("No plausible scenario failed.")
    failing = [o for o in report.outcomes if o.counts_as_failure][:max_rows]
    if failing:
        lines += ["", "## Failing scenarios", "", "| scenario | failed | min_ttc s | collision |", "|---|---|---|---|"]
        lines += [f"| {o.name} | {', '.join(o.failed)} | {_fmt(o.metrics.get('min_ttc', math.nan))} | "
                  f"{_fmt(o.metrics.get('collision', math.nan))} |" for o in failing]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (created), each via rename."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / "report.json", out_dir / "report.md"
        _write(json_path, to_json(report))
        _write(md_path, to_markdown(report))
    except OSError as exc:
        raise ReportError(f"cannot write the report into {out_dir}: {exc}") from exc
    return json_path, md_path


def passed_names(path: Path) -> set[str]:
    """Names of the scenarios that passed in a report written by :func:`write_report` (a baseline)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"cannot read baseline report {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("version") != VERSION:
        raise ReportError(f"{path}: not a {SCHEMA} version {VERSION} report")
    outcomes = doc.get("outcomes")
    if not isinstance(outcomes, list):
        raise ReportError(f"{path}: 'outcomes' must be a list")
    return {str(o["name"]) for o in outcomes if isinstance(o, dict) and o.get("passed") is True and "name" in o}
