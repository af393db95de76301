"""The one result shape every benchmark returns, and how it is printed.

Each bench module exposes ``run(quick: bool = False) -> list[Figure]`` and is runnable alone
(``python -m bench.bench_x``). ``ratio`` is ``value / limit`` for higher-is-better figures and
``limit / value`` for lower-is-better ones, so 1.0 always means "at the limit".
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its limit. ``module`` is the bench module that measured it;
    ``stale_since`` is set (to the time it was measured) on a figure carried over from an earlier
    run because its module failed in this one."""

    name: str
    value: float
    unit: str
    limit: float
    limit_name: str
    higher_is_better: bool = True
    note: str = ""
    module: str = ""
    stale_since: str = ""

    @property
    def ratio(self) -> float:
        if self.value == 0 or self.limit == 0:
            return 0.0
        return self.value / self.limit if self.higher_is_better else self.limit / self.value

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["ratio"] = round(self.ratio, 4)
        return out


def print_figures(figures: list[Figure]) -> None:
    for f in figures:
        print(f"{f.name:<48} {f.value:>14.4g} {f.unit:<10} limit {f.limit:>12.4g} "
              f"({f.limit_name})  ratio {f.ratio:6.3f}  {f.note}")


def write_results(figures: list[Figure], path: Path, failed: list[str] | None = None) -> None:
    doc = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "failed_modules": sorted(failed or []),
        "figures": {f.name: f.to_json() for f in figures},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def read_results(path: Path) -> tuple[list[Figure], str]:
    """The figures of an earlier ``results.json`` (empty when there is none) and when it was written."""
    if not path.exists():
        return [], ""
    doc = json.loads(path.read_text())
    figures = [Figure(**{k: v for k, v in entry.items() if k != "ratio"}) for entry in doc.get("figures", {}).values()]
    return figures, str(doc.get("machine", {}).get("when", "an earlier run"))


def carry_over(fresh: list[Figure], previous: list[Figure], previous_when: str, failed: list[str],
               ran: set[str] | None = None) -> list[Figure]:
    """``fresh`` plus, from ``previous`` (written at ``previous_when``): the last good figures of each
    failed module, marked stale with when they were measured; and, when only the modules ``ran``
    were run, the figures of the others, as they were.

    Figures from before modules were recorded (``module`` empty) are kept when no fresh figure has
    their name, since any of the failed modules may have measured them."""
    names = {f.name for f in fresh}
    out = list(fresh)
    for f in previous:
        if f.name in names:
            continue
        if f.module in failed or (not f.module and failed):
            out.append(f if f.stale_since else replace(f, stale_since=previous_when))
        elif ran is not None and f.module and f.module not in ran:
            out.append(f)
    return out


def main_for(run: object) -> None:
    """Entry point body for ``python -m bench.bench_x``: run the full version and print it."""
    import argparse

    parser = argparse.ArgumentParser(description="Run one benchmark and print figure vs limit.")
    parser.add_argument("--quick", action="store_true", help="shorter run (smoke test)")
    args = parser.parse_args()
    print_figures(run(quick=args.quick))  # type: ignore[operator]


BEGIN_MARK = "<!-- figures:begin -->"
END_MARK = "<!-- figures:end -->"


def markdown_table(figures: list[Figure], when: str) -> str:
    rows = [f"Measured {when} with `make bench` (2-core machine; each limit measured in the same run).", "",
            "| figure | ours | limit | limit is | ratio |", "|---|---:|---:|---|---:|"]
    for f in figures:
        ratio = f"{f.ratio:.3f}" + (f" (FAILED this run; figure from {f.stale_since})" if f.stale_since else "")
        rows.append(f"| {f.name} | {f.value:.4g} {f.unit} | {f.limit:.4g} {f.unit} | {f.limit_name} | {ratio} |")
    return "\n".join(rows)


def update_readme(figures: list[Figure], path: Path) -> None:
    """Replace the figures table between the markers of bench/README.md (append the markers if absent)."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"{BEGIN_MARK}\n{markdown_table(figures, when)}\n{END_MARK}"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        text = head + block + rest.split(END_MARK, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
