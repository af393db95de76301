"""Mine-and-perturb: densities for importance sampling, on-manifold rejection, and the CEM search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator_harness.closed_loop import BlindEgo, IDMEgo
from simulator_harness.generation.perturb import (
    Proposal,
    cem_search,
    default_variations,
    log_nominal,
    perturb_count,
    perturb_intensity,
    perturb_timing,
    perturb_variations,
)
from simulator_harness.scenario import (
    Actor,
    ActorKind,
    Dist,
    EgoSpec,
    Event,
    EventKind,
    Intent,
    ScenarioError,
    ScenarioSpec,
    Variation,
)


def jaywalk_seed() -> ScenarioSpec:
    return ScenarioSpec(
        name="jaywalk", duration_s=8.0, ego=EgoSpec(lane=0, s_m=40.0, speed_mps=14.0, desired_speed_mps=14.0),
        actors=(Actor("p", kind=ActorKind.PEDESTRIAN, lane=0, s_m=130.0, d_m=-3.0, intent=Intent.WAIT),),
        events=(Event(EventKind.JAYWALK, "p", 2.0),))


def test_default_variations_cover_timing_and_intensity() -> None:
    keys = [v.key for v in default_variations(jaywalk_seed())]
    assert keys == ["events[0].t_s", "events[0].params.speed_mps"]


def test_uniform_and_normal_log_densities() -> None:
    uni = [Variation("events[0].t_s", 1.0, 3.0, Dist.UNIFORM)]
    x = np.array([[1.5], [3.5]])
    assert log_nominal(uni, x).tolist() == [-math.log(2.0), -math.inf]
    norm = [Variation("events[0].t_s", 1.0, 3.0, Dist.NORMAL)]
    # Truncated at ±2σ: density at the mean = φ(0) / σ / (Φ(2) − Φ(−2)) with σ = 0.5.
    mass = math.erf(2 / math.sqrt(2))
    expected = -math.log(0.5 * math.sqrt(2 * math.pi)) - math.log(mass)
    assert log_nominal(norm, np.array([[2.0]]))[0] == pytest.approx(expected)


def test_proposal_samples_stay_in_range_and_its_density_integrates_to_one() -> None:
    var = (Variation("events[0].t_s", 1.0, 3.0, Dist.NORMAL),)
    q = Proposal(var, np.array([1.2]), np.array([0.8]))
    draws = q.sample(2000, np.random.default_rng(3))
    assert draws.min() >= 1.0 and draws.max() <= 3.0
    grid = np.linspace(1.0, 3.0, 4001)[:, None]
    assert np.trapezoid(np.exp(q.log_density(grid)), grid[:, 0]) == pytest.approx(1.0, abs=1e-3)


def test_timing_and_intensity_perturbations_return_consistent_densities() -> None:
    rng = np.random.default_rng(11)
    seed = jaywalk_seed()
    timing = perturb_timing(seed, 6, rng)
    assert len(timing) == 6
    assert all(lp == lq and np.isfinite(lp) for _, lp, lq in timing)  # drawn from the nominal itself
    times = [s.events[0].t_s for s, _, _ in timing]
    assert len(set(times)) == 6 and all(1.0 <= t <= 3.0 for t in times)
    assert seed.events[0].t_s == 2.0
    wide = Proposal.nominal(default_variations(seed)[1:])
    wide = Proposal(wide.variations, wide.mean + 0.3, wide.std * 2)
    strong = perturb_intensity(seed, 4, rng, proposal=wide)
    assert all(lp != lq for _, lp, lq in strong)
    for spec, lp, _ in strong:
        x = np.array([[spec.events[0].params["speed_mps"]]])
        assert lp == pytest.approx(float(log_nominal(wide.variations, x)[0]))


def test_count_perturbation_uses_poisson_densities() -> None:
    out = perturb_count(jaywalk_seed(), 5, np.random.default_rng(5), mean_extra=1.0, proposal_mean_extra=3.0)
    for spec, lp, lq in out:
        k = len(spec.actors) - 1
        assert lp == pytest.approx(-1.0 - math.lgamma(k + 1))
        assert lq == pytest.approx(k * math.log(3.0) - 3.0 - math.lgamma(k + 1))


def test_implausible_perturbations_are_resampled_or_refused() -> None:
    seed = jaywalk_seed()
    sprint = [Variation("events[0].params.speed_mps", 5.0, 9.0)]  # no human walks that fast
    with pytest.raises(ScenarioError, match="plausible"):
        perturb_variations(seed, sprint, 2, np.random.default_rng(0), max_rounds=2)
    mixed = [Variation("events[0].params.speed_mps", 1.0, 5.0)]
    out = perturb_variations(seed, mixed, 6, np.random.default_rng(0))
    assert all(s.events[0].params["speed_mps"] <= 3.5 for s, _, _ in out)


def test_cem_finds_failures_for_the_blind_ego_and_reports_weights() -> None:
    rng = np.random.default_rng(8)
    result = cem_search(jaywalk_seed(), BlindEgo(), rng, iterations=3, batch=16)
    assert len(result.samples) == 48 and len(result.failed) == 48
    assert result.failures, "a blind ego must be found failing"
    assert all(f.collided or f.min_ttc_s < 1.0 for f in result.failures)
    assert all(np.isfinite(lq) for _, _, lq in result.samples)
    assert all(np.isfinite(f.log_p) for f in result.failures)  # failures are plausible
    assert len(result.means) == 3


def test_cem_moves_toward_criticality() -> None:
    seed = ScenarioSpec(
        name="brake", duration_s=8.0, ego=EgoSpec(lane=0, s_m=50.0, speed_mps=20.0, desired_speed_mps=20.0),
        actors=(Actor("lead", lane=0, s_m=85.0, speed_mps=20.0, intent=Intent.KEEP_LANE, desired_speed_mps=20.0),),
        events=(Event(EventKind.LEAD_HARD_BRAKE, "lead", 2.0),),
        variations=(Variation("events[0].params.decel_mps2", 2.0, 9.0, Dist.NORMAL),))
    result = cem_search(seed, IDMEgo(), np.random.default_rng(4), iterations=4, batch=16)
    ttc = np.minimum(np.array(result.min_ttc_s).reshape(4, 16), 3.5)
    assert ttc[-1].mean() < ttc[0].mean() - 0.2  # the proposal moved toward smaller time to collision
    assert ttc[-1].mean() < 2.5
