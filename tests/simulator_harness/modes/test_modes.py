"""The three modes on the shipped regression suite: deterministic regression, failure search, risk."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from simulator_harness.errors import SimConfigError
from simulator_harness.modes import Criteria, Job, SweepOptions, evaluate, load_suite, regress, risk, run_batches
from simulator_harness.modes.commands import DEFAULT_SUITE
from simulator_harness.modes.report import to_json
from simulator_harness.modes.search import search
from simulator_harness.scenario import ScenarioError, ScenarioSpec

INLINE = SweepOptions(workers=0)


@pytest.fixture(scope="module")
def suite() -> dict[str, ScenarioSpec]:
    return {s.name: s for s in load_suite(DEFAULT_SUITE)}


def test_shipped_suite_loads_and_holds_the_real_seed(suite: dict[str, ScenarioSpec]) -> None:
    assert {"lead_brake_highway", "cut_in_dense", "jaywalk_urban", "red_light_runner", "ngsim_us101_seed"} <= set(suite)
    assert len(suite["ngsim_us101_seed"].actors) == 21


def test_criteria_name_each_failed_check() -> None:
    c = Criteria(min_ttc_s=1.5)
    assert c.failed({"collision": 1.0, "min_ttc": 0.0, "off_road": 0.0, "red_light": 0.0}) == ("collision", "min_ttc")
    assert c.failed({"collision": 0.0, "min_ttc": 1.4, "red_light": 1.0}) == ("red_light", "min_ttc")
    assert c.failed({"collision": 0.0, "min_ttc": math.inf}) == ()
    with pytest.raises(SimConfigError):
        Criteria(min_ttc_s=-1.0)


def test_regression_is_deterministic_and_flags_regressions(suite: dict[str, ScenarioSpec]) -> None:
    specs = list(suite.values())
    first = regress(specs, seed=5, variants=2, options=INLINE)
    again = regress(specs, seed=5, variants=2, options=INLINE)
    assert to_json(first.report) == to_json(again.report)
    other = regress(specs, seed=6, variants=2, options=INLINE)
    assert to_json(other.report) != to_json(first.report)  # the seed draws the variants
    passed = {o.name for o in first.report.outcomes if o.passed}
    assert {"lead_brake_highway", "cut_in_dense", "ngsim_us101_seed"} <= passed
    blind = regress(specs, seed=5, variants=2, policy_name="blind", baseline_passed=passed, options=INLINE)
    assert {"lead_brake_highway", "cut_in_dense", "ngsim_us101_seed"} <= set(blind.regressions)
    cells = {c.signature for c in blind.report.clusters}
    assert ("collision", "lead_hard_brake", "straight_multilane/lead_braking/car/clear_day/clear") in cells


def test_process_pool_gives_the_inline_outcomes(suite: dict[str, ScenarioSpec]) -> None:
    specs = list(suite.values())
    names = [s.name for s in specs]
    inline = run_batches(specs, names, "idm", Criteria(), SweepOptions(workers=0, batch_size=2))
    pooled = run_batches(specs, names, "idm", Criteria(), SweepOptions(workers=2, batch_size=2))
    assert [(o.name, o.failed, o.plausible) for o in inline] == [(o.name, o.failed, o.plausible) for o in pooled]
    assert [o.metrics for o in inline] == [o.metrics for o in pooled]


def test_a_broken_batch_is_reported_and_the_rest_go_on(suite: dict[str, ScenarioSpec]) -> None:
    spec = suite["lead_brake_highway"]
    lead = spec.actors[0]
    on_top = dataclasses.replace(spec, name="overlap", actors=(dataclasses.replace(lead, s_m=spec.ego.s_m + 1.0),))
    out = evaluate(Job((on_top,), ("overlap",)))
    assert out[0].failed == ("error",) and "overlap at t = 0" in out[0].gate_reasons[0]
    mixed = run_batches([on_top, spec], ["overlap", "fine"], "idm", Criteria(), SweepOptions(workers=0, batch_size=1))
    assert mixed[0].failed == ("error",) and mixed[1].passed


def test_search_finds_and_clusters_failures(suite: dict[str, ScenarioSpec]) -> None:
    run = search(suite["jaywalk_urban"], budget=48, seed=1, iterations=3, policy_name="blind", options=INLINE)
    s = run.report.summary
    assert s["simulated"] == 48 and 0 < s["failed"] < 48
    assert len(run.failing_specs) == s["failed"]
    assert all(c.signature[1] == "jaywalk" and "vru_crossing" in c.signature[2] for c in run.report.clusters)
    assert {o.name for o in run.report.outcomes} >= {"sample_0", "sample_47"}
    assert all(set(o.params) == set(s["varied"]) for o in run.report.outcomes)
    failing = run.failing_specs[0]
    assert failing.name.startswith("jaywalk_urban_fail_") and not failing.variations


def test_risk_estimate_agrees_with_plain_monte_carlo(suite: dict[str, ScenarioSpec]) -> None:
    report = risk(suite["red_light_runner"], samples=128, seed=0, cem_iterations=2, cem_batch=32,
                  options=SweepOptions(workers=0, batch_size=32))
    s = report.summary
    assert s["is_n"] == 128 and s["mc_n"] == 128 and s["is_failures"] > 0 and s["mc_failures"] > 0
    assert 0.0 < s["is_p_fail"] < 1.0 and s["is_upper"] >= s["is_p_fail"] and 0.0 < s["is_ess"] <= 128
    mc_se = math.sqrt(s["mc_p_fail"] * (1 - s["mc_p_fail"]) / s["mc_n"])
    assert abs(s["is_p_fail"] - s["mc_p_fail"]) < 3.0 * math.hypot(s["is_std_err"], mc_se)
    assert s["mc_samples_for_same_rel_err"] > 0
    assert any(c.signature[1] == "red_light_runner" for c in report.clusters)


def test_modes_reject_impossible_requests(suite: dict[str, ScenarioSpec], tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="budget"):
        search(suite["jaywalk_urban"], budget=2, options=INLINE)
    with pytest.raises(ScenarioError, match="nothing to vary"):
        risk(suite["ngsim_us101_seed"], samples=8, options=INLINE)
    with pytest.raises(SimConfigError, match="unknown policy"):
        run_batches([suite["jaywalk_urban"]], ["x"], "reckless", Criteria(), INLINE)
    with pytest.raises(ScenarioError, match="no such suite"):
        load_suite(tmp_path / "missing")


def test_risk_bound_takes_the_defensive_range_a_priori(suite: dict[str, ScenarioSpec]) -> None:
    """Every weight of ``α·nominal + (1-α)·proposal`` is at most ``1/α``: the bound uses that range,
    not the largest weight seen, and plain Monte Carlo's uses 1."""
    report = risk(suite["red_light_runner"], samples=256, seed=1, cem_iterations=2, cem_batch=32, defensive=0.5,
                  options=SweepOptions(workers=0, batch_size=32))
    s = report.summary
    log_term = math.log(40.0)
    assert s["defensive_share"] == 0.5 and s["is_value_range"] == 2.0 and s["is_range_a_priori"] is True
    assert s["is_range_term"] == pytest.approx(7.0 * 2.0 * log_term / (3.0 * 255))
    assert s["is_upper"] == pytest.approx(min(1.0, s["is_p_fail"] + math.sqrt(2.0 * log_term) * s["is_std_err"]
                                              + s["is_range_term"]))
    assert s["is_upper"] < 1.0  # not clipped, so the formula above was really checked
    mc_se = math.sqrt(s["mc_p_fail"] * (1 - s["mc_p_fail"]) / (s["mc_n"] - 1))
    assert s["mc_upper"] == pytest.approx(s["mc_p_fail"] + math.sqrt(2.0 * log_term) * mc_se
                                          + 7.0 * log_term / (3.0 * (s["mc_n"] - 1)))
