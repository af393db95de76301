"""Judge scenarios: simulate, measure, gate and apply pass/fail criteria, in batches through the sweep.

A :class:`Job` is a batch of specs sharing one road (one vectorised rollout); :func:`evaluate` is
the pure, picklable work function every mode hands to :func:`simulator_harness.sweep.run_sweep`,
so the same code runs inline, on the local process pool or on Ray. A job whose evaluation raises
comes back as outcomes failing the ``error`` check, and the run goes on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulator_harness.assessment import outcomes as metrics
from simulator_harness.assessment.plausibility import check
from simulator_harness.closed_loop import BlindEgo, EgoPolicy, IDMEgo, simulate
from simulator_harness.errors import SimConfigError
from simulator_harness.modes.report import Outcome
from simulator_harness.scenario import ScenarioSpec, taxonomy_cell
from simulator_harness.sweep import run_sweep

#: Ego policies a mode can test, by name.
POLICIES: dict[str, type[IDMEgo] | type[BlindEgo]] = {"idm": IDMEgo, "blind": BlindEgo}


@dataclass(frozen=True)
class Criteria:
    """What a passing scenario must satisfy: no collision, no off-road, no red light run, and a
    minimum time to collision of at least ``min_ttc_s``."""

    min_ttc_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_ttc_s <= 10.0:
            raise SimConfigError(f"min_ttc_s must be 0-10 s, got {self.min_ttc_s}")

    def failed(self, values: Mapping[str, float]) -> tuple[str, ...]:
        """Names of the checks ``values`` (metric name → value) fails, in a fixed order."""
        out = []
        for name in ("collision", "off_road", "red_light"):
            if values.get(name, 0.0) > 0.0:
                out.append(name)
        if values.get("min_ttc", math.inf) < self.min_ttc_s:
            out.append("min_ttc")
        return tuple(out)


@dataclass(frozen=True)
class Job:
    """One batch: specs on one road, their display names and varied parameter values."""

    specs: tuple[ScenarioSpec, ...]
    names: tuple[str, ...]
    policy: str = "idm"
    criteria: Criteria = field(default_factory=Criteria)
    params: tuple[dict[str, float], ...] = ()


def policy(name: str) -> EgoPolicy:
    """The ego policy registered as ``name``."""
    if name not in POLICIES:
        raise SimConfigError(f"unknown policy {name!r} (known: {', '.join(sorted(POLICIES))})")
    return POLICIES[name]()


def _event(spec: ScenarioSpec) -> str:
    return min(spec.events, key=lambda e: e.t_s).kind.value if spec.events else "none"


def evaluate(job: Job) -> list[Outcome]:
    """Simulate the batch, compute every registered metric, gate it, and judge it."""
    try:
        specs = list(job.specs)
        traj, params = simulate(specs, policy(job.policy))
        values = metrics.compute_all(traj, params.road)
        verdicts = check(traj, params, specs)
    except Exception as exc:  # a broken batch is reported as such; the other batches go on
        return [Outcome(n, taxonomy_cell(s), _event(s), {}, ("error",), True, (f"{type(exc).__name__}: {exc}",),
                        dict(job.params[i]) if job.params else {})
                for i, (n, s) in enumerate(zip(job.names, job.specs, strict=True))]
    out = []
    for i, (name, spec) in enumerate(zip(job.names, specs, strict=True)):
        row = {k: float(v.value[i]) for k, v in values.items() if bool(v.valid[i])}
        out.append(Outcome(name, taxonomy_cell(spec), _event(spec), row, job.criteria.failed(row),
                           verdicts[i].passed, verdicts[i].reasons, dict(job.params[i]) if job.params else {}))
    return out


def make_jobs(specs: Sequence[ScenarioSpec], names: Sequence[str], policy_name: str, criteria: Criteria,
              batch_size: int, params: Sequence[dict[str, float]] | None = None) -> list[tuple[list[int], Job]]:
    """Split specs into jobs of at most ``batch_size`` specs sharing a road; returns each job with
    the input positions it covers."""
    if batch_size < 1:
        raise SimConfigError(f"batch size must be >= 1, got {batch_size}")
    by_road: dict[object, list[int]] = {}
    for i, spec in enumerate(specs):
        by_road.setdefault(spec.road, []).append(i)
    jobs = []
    for idx in by_road.values():
        for start in range(0, len(idx), batch_size):
            part = idx[start:start + batch_size]
            jobs.append((part, Job(tuple(specs[i] for i in part), tuple(names[i] for i in part), policy_name,
                                   criteria, tuple(params[i] for i in part) if params is not None else ())))
    return jobs


@dataclass(frozen=True)
class SweepOptions:
    """How batches run: ``workers`` (None: CPU count, 0: inline), a Ray address, progress bars."""

    workers: int | None = None
    ray_address: str | None = None
    progress: bool = False
    batch_size: int = 16


def run_batches(specs: Sequence[ScenarioSpec], names: Sequence[str], policy_name: str, criteria: Criteria,
                options: SweepOptions, params: Sequence[dict[str, float]] | None = None,
                description: str = "scenarios") -> list[Outcome]:
    """Evaluate every spec through :func:`run_sweep`; outcomes in input order."""
    policy(policy_name)  # reject an unknown policy before starting workers
    jobs = make_jobs(specs, names, policy_name, criteria, options.batch_size, params)
    result = run_sweep(evaluate, [job for _, job in jobs], workers=options.workers, chunk_size=1,
                       ray_address=options.ray_address, progress=options.progress, description=description)
    out: list[Outcome | None] = [None] * len(specs)
    for (positions, job), outcomes in zip(jobs, result.results, strict=True):
        if outcomes is None:  # evaluate() catches everything; this is a worker that died
            outcomes = [Outcome(n, taxonomy_cell(s), _event(s), {}, ("error",), True, ("worker failed",))
                        for n, s in zip(job.names, job.specs, strict=True)]
        for pos, outcome in zip(positions, outcomes, strict=True):
            out[pos] = outcome
    return [o for o in out if o is not None]


def scores(outcomes: Sequence[Outcome]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_],
                                                 npt.NDArray[np.bool_]]:
    """``(min_ttc_s, collided, plausible)`` arrays, the scores the cross-entropy search ranks by."""
    ttc = np.array([o.metrics.get("min_ttc", math.inf) for o in outcomes], dtype=np.float64)
    hit = np.array([o.metrics.get("collision", 0.0) > 0 for o in outcomes], dtype=bool)
    ok = np.array([o.plausible and "error" not in o.failed for o in outcomes], dtype=bool)
    return ttc, hit, ok
