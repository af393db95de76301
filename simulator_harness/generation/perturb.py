"""Mine-and-perturb: timing, count and intensity perturbations of a seed spec, and a
criticality-guided search (cross-entropy method toward small time to collision).

Every generator returns ``list[tuple[ScenarioSpec, log_p, log_q]]``: ``log_p`` is the density of the
perturbation under the *nominal* distribution (the spec's :class:`Variation` ranges, uniform or
truncated normal; Poisson for the count of extra vehicles), ``log_q`` under the proposal that
actually drew it. Perturbed specs are re-simulated and re-checked by the plausibility gate; a
sample the gate rejects is off the nominal manifold and is returned with ``log_p = -inf`` (weight
zero) by the search, and resampled by the plain generators. Densities are those of the untruncated
draws; rejection only rescales them by a constant, so use self-normalised importance weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulator_harness.assessment import outcomes as metrics
from simulator_harness.assessment.plausibility import PlausibilityParams, check
from simulator_harness.closed_loop.build import headway_ok
from simulator_harness.closed_loop.policy import EgoPolicy, IDMEgo
from simulator_harness.closed_loop.rollout import simulate
from simulator_harness.closed_loop.state import KIND_SIZE
from simulator_harness.scenario.errors import ScenarioError
from simulator_harness.scenario.spec import EVENT_PARAMS, Actor, ActorKind, Dist, ScenarioSpec, Variation
from simulator_harness.scenario.variation import apply

F64 = npt.NDArray[np.float64]
Sample = tuple[ScenarioSpec, float, float]
_INTENSITY = {"decel_mps2", "lateral_omega_radps", "speed_mps"}


def default_variations(spec: ScenarioSpec, timing_s: float = 1.0, intensity: float = 0.5) -> tuple[Variation, ...]:
    """The spec's own variations, else ±``timing_s`` on every event time and ±``intensity`` (relative)
    on each event's intensity parameter, all truncated normal."""
    if spec.variations:
        return spec.variations
    out = []
    for i, event in enumerate(spec.events):
        out.append(Variation(f"events[{i}].t_s", max(0.0, event.t_s - timing_s),
                             min(spec.duration_s - 0.5, event.t_s + timing_s), Dist.NORMAL))
        for name in EVENT_PARAMS[event.kind]:
            if name in _INTENSITY and event.param(name) > 0:
                value = event.param(name)
                out.append(Variation(f"events[{i}].params.{name}", value * (1 - intensity),
                                     value * (1 + intensity), Dist.NORMAL))
    return tuple(v for v in out if v.low < v.high)


@dataclass(frozen=True)
class Proposal:
    """Independent truncated normals over ``variations``: ``mean``/``std`` per variation."""

    variations: tuple[Variation, ...]
    mean: F64
    std: F64

    @staticmethod
    def nominal(variations: Sequence[Variation]) -> Proposal:
        """Centred on each range with std = range / 4 (the NORMAL nominal)."""
        lo = np.array([v.low for v in variations])
        hi = np.array([v.high for v in variations])
        return Proposal(tuple(variations), 0.5 * (lo + hi), 0.25 * (hi - lo))

    def sample(self, n: int, rng: np.random.Generator) -> F64:
        """``(n, D)`` draws inside the ranges (rejection from the normal)."""
        lo = np.array([v.low for v in self.variations])
        hi = np.array([v.high for v in self.variations])
        out = rng.normal(self.mean, self.std, size=(n, lo.size))
        for _ in range(1000):
            bad = (out < lo) | (out > hi)
            if not bad.any():
                return out
            out[bad] = rng.normal(np.broadcast_to(self.mean, out.shape)[bad], np.broadcast_to(self.std, out.shape)[bad])
        raise ScenarioError("proposal mass lies outside the variation ranges; widen std or move the mean")

    def log_density(self, x: F64) -> F64:
        """Log density of rows of ``x`` ``(n, D)``."""
        parts = [_log_tnorm(x[:, d], self.mean[d], self.std[d], v.low, v.high)
                 for d, v in enumerate(self.variations)]
        return np.asarray(np.sum(parts, axis=0), dtype=np.float64)


def log_nominal(variations: Sequence[Variation], x: F64) -> F64:
    """Log density of rows of ``x`` under the variations' nominal distributions."""
    nominal = Proposal.nominal(variations)
    total = np.zeros(x.shape[0])
    for d, v in enumerate(variations):
        if v.dist is Dist.UNIFORM:
            inside = (x[:, d] >= v.low) & (x[:, d] <= v.high)
            total += np.where(inside, -math.log(v.high - v.low), -np.inf)
        else:
            total += _log_tnorm(x[:, d], nominal.mean[d], nominal.std[d], v.low, v.high)
    return total


def _log_tnorm(x: F64, mu: float, sigma: float, lo: float, hi: float) -> F64:
    def cdf(z: float) -> float:
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    mass = max(cdf((hi - mu) / sigma) - cdf((lo - mu) / sigma), 1e-300)
    z = (x - mu) / sigma
    logpdf = -0.5 * z * z - math.log(sigma * math.sqrt(2.0 * math.pi)) - math.log(mass)
    return np.where((x >= lo) & (x <= hi), logpdf, -np.inf)


def _specs(seed: ScenarioSpec, variations: Sequence[Variation], x: F64) -> list[ScenarioSpec]:
    return [apply(seed, {v.key: float(row[d]) for d, v in enumerate(variations)}) for row in x]


def _plausible(specs: list[ScenarioSpec], policy: EgoPolicy, gate: PlausibilityParams | None) -> list[bool]:
    traj, params = simulate(specs, policy)
    return [v.passed for v in check(traj, params, specs, gate)]


def perturb_variations(seed: ScenarioSpec, variations: Sequence[Variation], n: int, rng: np.random.Generator,
                       proposal: Proposal | None = None, policy: EgoPolicy | None = None,
                       gate: PlausibilityParams | None = None, max_rounds: int = 10) -> list[Sample]:
    """``n`` plausible perturbations of ``seed`` over ``variations``, drawn from ``proposal``
    (default: the nominal itself), with their ``log_p``/``log_q``."""
    if not variations:
        raise ScenarioError(f"{seed.name}: nothing to perturb (no variations and no events)")
    q = proposal or Proposal.nominal(variations)
    nominal_is_q = proposal is None and all(v.dist is Dist.NORMAL for v in variations)
    out: list[Sample] = []
    for _ in range(max_rounds):
        x = q.sample(n - len(out), rng)
        specs = _specs(seed, variations, x)
        lp = log_nominal(variations, x)
        lq = lp if nominal_is_q else q.log_density(x)
        ok = _plausible(specs, policy or IDMEgo(), gate)
        out += [(s, float(a), float(b)) for s, a, b, k in zip(specs, lp, lq, ok, strict=True) if k]
        if len(out) >= n:
            return out[:n]
    raise ScenarioError(f"{seed.name}: only {len(out)} of {n} perturbations were plausible after "
                        f"{max_rounds} rounds; narrow the variation ranges")


def perturb_timing(seed: ScenarioSpec, n: int, rng: np.random.Generator, spread_s: float = 1.0,
                   **kw: object) -> list[Sample]:
    """Shift event times (truncated normal, ±``spread_s``)."""
    vs = [v for v in default_variations(seed, timing_s=spread_s) if v.key.endswith(".t_s")]
    return perturb_variations(seed, vs, n, rng, **kw)  # type: ignore[arg-type]


def perturb_intensity(seed: ScenarioSpec, n: int, rng: np.random.Generator, spread: float = 0.5,
                      **kw: object) -> list[Sample]:
    """Scale event intensities (braking, lateral ω, walking speed) by up to ±``spread``."""
    vs = [v for v in default_variations(seed, intensity=spread) if ".params." in v.key]
    return perturb_variations(seed, vs, n, rng, **kw)  # type: ignore[arg-type]


def perturb_count(seed: ScenarioSpec, n: int, rng: np.random.Generator, mean_extra: float = 2.0,
                  proposal_mean_extra: float | None = None, policy: EgoPolicy | None = None,
                  gate: PlausibilityParams | None = None, max_rounds: int = 10) -> list[Sample]:
    """Add ``k ~ Poisson`` background cars (nominal mean ``mean_extra``, proposal mean
    ``proposal_mean_extra``) at safe headways; their placement is drawn alike under p and q."""
    lam_q = proposal_mean_extra if proposal_mean_extra is not None else mean_extra
    out: list[Sample] = []
    for _ in range(max_rounds):
        specs, lp, lq = [], [], []
        for _ in range(n - len(out)):
            k = int(rng.poisson(lam_q))
            specs.append(_add_background(seed, k, rng))
            lp.append(_log_poisson(k, mean_extra))
            lq.append(_log_poisson(k, lam_q))
        ok = _plausible(specs, policy or IDMEgo(), gate)
        out += [(s, a, b) for s, a, b, good in zip(specs, lp, lq, ok, strict=True) if good]
        if len(out) >= n:
            return out[:n]
    raise ScenarioError(f"{seed.name}: only {len(out)} of {n} count perturbations were plausible")


def _log_poisson(k: int, lam: float) -> float:
    return k * math.log(lam) - lam - math.lgamma(k + 1) if lam > 0 else (0.0 if k == 0 else -math.inf)


def _add_background(seed: ScenarioSpec, k: int, rng: np.random.Generator) -> ScenarioSpec:
    road = seed.road
    placed = [(seed.ego.lane, seed.ego.s_m, seed.ego.speed_mps, KIND_SIZE[ActorKind.CAR][0])]
    placed += [(a.lane, a.s_m, a.speed_mps, KIND_SIZE[a.kind][0]) for a in seed.actors
               if a.kind in (ActorKind.CAR, ActorKind.TRUCK)]
    extra = []
    for j in range(k):
        for _ in range(200):
            lane = int(rng.integers(road.lanes))
            s = float(rng.uniform(0.0, 0.6 * road.length_m))
            v = float(rng.uniform(0.6, 0.9) * road.speed_limit_mps)
            if all(headway_ok(lane, s, v, KIND_SIZE[ActorKind.CAR][0], o, 1.5) for o in placed):
                placed.append((lane, s, v, KIND_SIZE[ActorKind.CAR][0]))
                extra.append(Actor(name=f"bg_{j + 1}", lane=lane, s_m=s, speed_mps=v))
                break
    return ScenarioSpec(**{**seed.__dict__, "actors": seed.actors + tuple(extra)})


@dataclass(frozen=True)
class Failure:
    """A plausible sampled scenario in which the policy under test collided or came too close."""

    spec: ScenarioSpec
    min_ttc_s: float
    collided: bool
    log_p: float
    log_q: float


@dataclass(frozen=True)
class SearchResult:
    """Everything the search drew (for importance sampling), the failures, and the proposal path."""

    samples: list[Sample]
    failed: list[bool]
    failures: list[Failure]
    min_ttc_s: list[float] = field(default_factory=list)  # per sample, inf when never projected to collide
    means: list[F64] = field(default_factory=list)
    proposal: Proposal | None = None  # the proposal after the last refit


#: Scores a batch of specs: ``(min_ttc_s, collided, plausible)``, each ``(n,)``.
Evaluator = Callable[[list[ScenarioSpec]], tuple[F64, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]


def evaluate_inline(specs: list[ScenarioSpec], policy: EgoPolicy,
                    gate: PlausibilityParams | None = None) -> tuple[F64, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Simulate ``specs`` in one batch in this process and score them as :func:`cem_search` does."""
    traj, params = simulate(specs, policy)
    ttc = metrics.get("min_ttc")(traj, params.road).value
    hit = metrics.get("collision")(traj, params.road).value > 0
    ok = np.array([v.passed for v in check(traj, params, specs, gate)])
    return ttc, hit, ok


def cem_search(seed: ScenarioSpec, policy: EgoPolicy, rng: np.random.Generator, iterations: int = 4,
               batch: int = 32, elite_frac: float = 0.25, ttc_fail_s: float = 1.0, smoothing: float = 0.7,
               variations: Sequence[Variation] | None = None,
               gate: PlausibilityParams | None = None, evaluate: Evaluator | None = None) -> SearchResult:
    """Cross-entropy search over event timing/intensity toward minimum TTC of ``policy``.

    Each iteration draws ``batch`` specs from the current truncated-normal proposal, simulates them in
    one batch, scores ``min_ttc`` (implausible samples score worst and get ``log_p = -inf``) and refits
    the proposal to the best ``elite_frac``. A failure is a plausible sample that collides or has
    ``min_ttc < ttc_fail_s``. ``evaluate`` scores a batch elsewhere (e.g. through
    :func:`simulator_harness.sweep.run_sweep`); by default :func:`evaluate_inline` with ``policy``.
    """
    vs = tuple(variations or default_variations(seed))
    if not vs:
        raise ScenarioError(f"{seed.name}: nothing to search over (no variations and no events)")
    q = Proposal.nominal(vs)
    lo, hi = np.array([v.low for v in vs]), np.array([v.high for v in vs])
    result = SearchResult(samples=[], failed=[], failures=[])
    for _ in range(iterations):
        x = q.sample(batch, rng)
        specs = _specs(seed, vs, x)
        ttc, hit, ok = evaluate(specs) if evaluate is not None else evaluate_inline(specs, policy, gate)
        lp = np.where(ok, log_nominal(vs, x), -np.inf)
        lq = q.log_density(x)
        failed = ok & (hit | (ttc < ttc_fail_s))
        for j, spec in enumerate(specs):
            result.samples.append((spec, float(lp[j]), float(lq[j])))
            result.failed.append(bool(failed[j]))
            result.min_ttc_s.append(float(ttc[j]) if ok[j] else math.inf)
            if failed[j]:
                result.failures.append(Failure(spec, float(ttc[j]), bool(hit[j]), float(lp[j]), float(lq[j])))
        score = np.where(ok, np.minimum(ttc, 3.5), np.inf)
        elite = np.argsort(score, kind="stable")[: max(2, int(elite_frac * batch))]
        elite = elite[np.isfinite(score[elite])]
        if elite.size >= 2:
            mean = smoothing * x[elite].mean(axis=0) + (1 - smoothing) * q.mean
            std = smoothing * x[elite].std(axis=0) + (1 - smoothing) * q.std
            q = Proposal(vs, np.clip(mean, lo, hi), np.maximum(std, 0.02 * (hi - lo)))
        result.means.append(q.mean.copy())
    return dataclasses.replace(result, proposal=q)


__all__ = ["Evaluator", "Failure", "Proposal", "SearchResult", "cem_search", "default_variations", "evaluate_inline",
           "log_nominal",
           "perturb_count", "perturb_intensity", "perturb_timing", "perturb_variations"]
