"""Regression mode: a frozen suite of specs, run deterministically and compared with a baseline.

Each spec runs as written, plus ``variants`` seeded draws from its variations (or the default
timing/intensity variations), named ``<spec>#v<k>``. The same suite, seed and policy give the same
report byte for byte. A regression is a scenario that passed in the baseline report and does not
pass now (failed, implausible, or missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator_harness.generation.perturb import default_variations
from simulator_harness.modes.evaluate import Criteria, SweepOptions, run_batches
from simulator_harness.modes.report import Report, build_report
from simulator_harness.scenario import ScenarioError, ScenarioSpec, apply, load
from simulator_harness.scenario.spec import Dist, Variation

SPEC_SUFFIXES = (".toml", ".json")


def suite_files(path: Path) -> list[Path]:
    """The spec files of a suite: ``path`` itself, or every ``.toml``/``.json`` under it, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ScenarioError(f"{path}: no such suite file or directory")
    files = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
    if not files:
        raise ScenarioError(f"{path}: the suite holds no .toml or .json spec")
    return files


def load_suite(path: Path) -> list[ScenarioSpec]:
    """Every spec of the suite; a bad file raises :class:`ScenarioError` naming it."""
    specs = [load(p) for p in suite_files(path)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScenarioError(f"{path}: scenario names must be unique in a suite, repeated: {', '.join(dupes)}")
    return specs


def sample_nominal(variations: tuple[Variation, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, D)`` draws from the variations' nominal distributions (uniform, or truncated normal
    centred on the range with std = range / 4)."""
    out = np.empty((n, len(variations)))
    for d, v in enumerate(variations):
        if v.dist is Dist.UNIFORM:
            out[:, d] = rng.uniform(v.low, v.high, n)
        else:
            col = rng.normal(0.5 * (v.low + v.high), 0.25 * (v.high - v.low), n)
            while (bad := (col < v.low) | (col > v.high)).any():
                col[bad] = rng.normal(0.5 * (v.low + v.high), 0.25 * (v.high - v.low), int(bad.sum()))
            out[:, d] = col
    return out


@dataclass(frozen=True)
class RegressionResult:
    """The report and the names of the scenarios that regressed against the baseline."""

    report: Report
    regressions: tuple[str, ...]


def expand(specs: list[ScenarioSpec], variants: int, seed: int) -> tuple[list[ScenarioSpec], list[str],
                                                                        list[dict[str, float]]]:
    """Each spec, then ``variants`` seeded variants of it; with names and varied values."""
    out: list[ScenarioSpec] = []
    names: list[str] = []
    params: list[dict[str, float]] = []
    streams = np.random.SeedSequence(seed).spawn(len(specs))
    for spec, stream in zip(specs, streams, strict=True):
        out.append(spec)
        names.append(spec.name)
        params.append({})
        vs = default_variations(spec)
        if variants <= 0 or not vs:
            continue
        x = sample_nominal(vs, variants, np.random.default_rng(stream))
        for k, row in enumerate(x):
            values = {v.key: float(row[d]) for d, v in enumerate(vs)}
            out.append(apply(spec, values))
            names.append(f"{spec.name}#v{k}")
            params.append(values)
    return out, names, params


def regress(specs: list[ScenarioSpec], seed: int = 0, variants: int = 0, policy_name: str = "idm",
            criteria: Criteria | None = None, baseline_passed: set[str] | None = None,
            options: SweepOptions | None = None, title: str = "Regression suite") -> RegressionResult:
    """Run the suite (see the module docstring) and compare with ``baseline_passed``."""
    crit = criteria or Criteria()
    runs, names, params = expand(specs, variants, seed)
    outcomes = run_batches(runs, names, policy_name, crit, options or SweepOptions(), params, "regression")
    passed_now = {o.name for o in outcomes if o.passed}
    regressions = tuple(sorted(baseline_passed - passed_now)) if baseline_passed is not None else ()
    summary = {"policy": policy_name, "variants_per_spec": variants, "min_ttc_s": crit.min_ttc_s,
               "baseline": baseline_passed is not None, "regressions": len(regressions)}
    notes = tuple(f"regression: {n} passed in the baseline and does not pass now" for n in regressions)
    return RegressionResult(build_report("regress", title, seed, outcomes, summary, notes), regressions)
