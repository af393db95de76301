"""Trigger rules driven by plain samples, the engine's decoding, and window merging."""

from __future__ import annotations

from typing import Any

import pytest

from shared import wire
from shared.errors import ContractError
from shared.payloads import VehicleState
from shared.triggers import TriggerEvent, TriggerKind, TriggerSource
from tests.vehicle.conftest import state_payload
from vehicle.config.tree import TopicsConfig, TriggerConfig
from vehicle.triggers.rules import RULES, StateSample, TriggerEngine
from vehicle.triggers.windows import WindowPlanner

NS = 1_000_000_000
DT = NS // 50


def state(t: int, accel: float = 0.0, speed: float = 15.0, lat: float = 0.0, engaged: bool = True,
          lead_d: float | None = None, lead_v: float | None = None) -> StateSample:
    return StateSample(t, VehicleState(0, 0, 0, speed, accel, lat, 0, engaged), lead_d, lead_v)


def rule(kind: str, **kw: Any) -> Any:
    return RULES[kind](kind, TriggerConfig(kind=kind, **kw))


def run(r: Any, samples: list[StateSample]) -> list[TriggerEvent]:
    return [e for s in samples if (e := r.observe_state(s)) is not None]


def test_hard_brake_fires_on_sustained_decel_only() -> None:
    r = rule("hard_brake", decel_mps2=4.0, min_duration_s=0.2, pre_s=30, post_s=10, priority=80)
    spikes = [state(k * DT, -9.0 if k % 5 == 0 else 0.0) for k in range(100)]
    assert run(r, spikes) == [], "single-sample spikes never last 0.2 s"
    braking = [state(k * DT, -6.0 if 200 <= k < 240 else 0.0) for k in range(100, 300)]
    (ev,) = run(r, braking)
    assert ev.t_ns == 210 * DT, "fires when 0.2 s of braking completed the rule"
    assert (ev.start_ns, ev.end_ns) == (ev.t_ns - 30 * NS, ev.t_ns + 10 * NS)
    assert (ev.kind, ev.priority, ev.source, ev.scores) == (TriggerKind.HARD_BRAKE, 80, TriggerSource.RULE,
                                                             {"decel_mps2": 6.0})


def test_cooldown_is_respected_and_each_episode_fires_once() -> None:
    r = rule("hard_brake", min_duration_s=0.1, cooldown_s=5.0)
    brake_at = {100, 300, 700}  # sample indices where a 0.5 s brake starts (2 s, 6 s, 14 s)
    samples = [state(k * DT, -6.0 if any(b <= k < b + 25 for b in brake_at) else 0.0) for k in range(900)]
    fired = run(r, samples)
    assert [e.t_ns // DT for e in fired] == [105, 705], "the 6 s brake is inside the 5 s cooldown"


def test_swerve_by_lateral_accel_and_by_jerk() -> None:
    r = rule("swerve", lat_accel_mps2=4.0, min_duration_s=0.1)
    (ev,) = run(r, [state(k * DT, lat=5.0 if 10 <= k < 30 else 0.0) for k in range(50)])
    assert ev.t_ns == 15 * DT and ev.kind is TriggerKind.SWERVE
    jerk = rule("swerve", lat_accel_mps2=8.0, jerk_mps3=50.0, min_duration_s=0.5)
    (ev,) = run(jerk, [state(k * DT, lat=0.0 if k < 10 else 2.0) for k in range(20)])  # 100 m/s³ step
    assert ev.t_ns == 10 * DT and ev.scores["lat_jerk_mps3"] == pytest.approx(100.0)


def test_ttc_needs_a_lead_and_uses_closing_speed() -> None:
    r = rule("ttc", ttc_s=3.0, min_duration_s=0.0)
    assert run(r, [state(k * DT, speed=20.0) for k in range(10)]) == [], "no lead field, no rule"
    assert run(r, [state(k * DT, speed=20.0, lead_d=50.0, lead_v=10.0) for k in range(10)]) == []  # 5 s
    (ev,) = run(r, [state(k * DT, speed=20.0, lead_d=40.0 - k, lead_v=10.0) for k in range(10, 20)])
    assert ev.scores["ttc_s"] < 3.0 and ev.t_ns == 11 * DT  # 29 m / 10 m/s = 2.9 s


def test_disengagement_on_the_falling_edge() -> None:
    r = rule("disengagement")
    flags = [True] * 5 + [False] * 5 + [True] * 5
    (ev,) = run(r, [state(k * DT, engaged=f) for k, f in enumerate(flags)])
    assert ev.t_ns == 5 * DT and ev.kind is TriggerKind.DISENGAGEMENT


def test_random_sampling_is_seeded_and_near_its_probability() -> None:
    samples = [state(k * NS // 10) for k in range(20_000)]  # 2000 periods of 1 s
    a = run(rule("random", probability=0.05, period_s=1.0, seed=7, cooldown_s=0.0), samples)
    b = run(rule("random", probability=0.05, period_s=1.0, seed=7, cooldown_s=0.0), samples)
    c = run(rule("random", probability=0.05, period_s=1.0, seed=8, cooldown_s=0.0), samples)
    assert [e.t_ns for e in a] == [e.t_ns for e in b] != [e.t_ns for e in c]
    assert 60 <= len(a) <= 140  # 100 expected; a wide binomial band


def test_engine_decodes_payloads_and_reads_model_scores() -> None:
    cfgs = {"hb": TriggerConfig(kind="hard_brake", min_duration_s=0.0),
            "unc": TriggerConfig(kind="uncertainty", threshold=0.8, min_duration_s=0.0),
            "ood": TriggerConfig(kind="ood", score_key="ood_score", threshold=0.5, min_duration_s=0.0)}
    engine = TriggerEngine(cfgs, TopicsConfig())
    assert engine.observe(1, "imu", b"whatever") == []
    (ev,) = engine.observe(5 * NS, "vehicle_state", state_payload(accel_mps2=-7.0))
    assert ev.name == "hb"
    scores = wire.pack("avdata.ModelScores", 1, {"frame_t_ns": 3, "scores": {"uncertainty": 0.9,
                                                                              "ood_score": 0.1}})
    (ev,) = engine.observe(6 * NS, "model/scores", scores)
    assert (ev.name, ev.source, ev.scores) == ("unc", TriggerSource.MODEL, {"uncertainty": 0.9})
    with pytest.raises(ContractError):
        engine.observe(7 * NS, "vehicle_state", b"\x93garbage")
    with pytest.raises(ContractError):
        engine.observe(7 * NS, "model/scores", wire.pack("avdata.ModelScores", 1, {"label": "x"}))


def ev(t_s: float, pre: float = 30, post: float = 10, prio: int = 50) -> TriggerEvent:
    t = round(t_s * NS)
    return TriggerEvent(TriggerKind.HARD_BRAKE, t, t - round(pre * NS), t + round(post * NS), prio,
                        TriggerSource.RULE)


def test_overlapping_windows_merge_keeping_every_trigger() -> None:
    planner = WindowPlanner()
    planner.add(ev(100))
    planner.add(ev(200))                # disjoint: its own window
    merged = planner.add(ev(105, prio=90))  # overlaps the first
    assert (merged.start_ns, merged.end_ns) == (70 * NS, 115 * NS) and len(merged.triggers) == 2
    assert merged.priority == 90
    assert len(planner.pending) == 2
    bridge = planner.add(ev(160, pre=50, post=30))  # [110, 190] touches both
    assert (bridge.start_ns, bridge.end_ns, len(bridge.triggers)) == (70 * NS, 210 * NS, 4)
    assert planner.due(210 * NS) == []
    assert planner.due(210 * NS + 1) == [bridge]
    assert len(planner.pending) == 0


def test_a_bare_ood_trigger_fires_above_the_fitted_threshold_only() -> None:
    """``kind = "ood"`` with no score_key/threshold reads ``ood_ratio`` at 1.0, never the raw distance."""
    cfg = TriggerConfig(kind="ood", min_duration_s=0.0, cooldown_s=0.0)
    assert (cfg.score_key, cfg.threshold) == ("ood_ratio", 1.0)
    assert (TriggerConfig(kind="uncertainty").score_key, TriggerConfig(kind="uncertainty").threshold) == (
        "uncertainty", 0.5)
    engine = TriggerEngine({"ood": cfg}, TopicsConfig())

    def scores(ood: float, ratio: float) -> bytes:
        return wire.pack("avdata.ModelScores", 1, {"scores": {"ood": ood, "ood_ratio": ratio}})

    assert engine.observe(1 * NS, "model/scores", scores(3.0, 0.95)) == []  # a raw distance of 3 is below 1x
    (fired,) = engine.observe(2 * NS, "model/scores", scores(2.4, 1.07))
    assert fired.scores == {"ood_ratio": 1.07}
