"""Canary analysis: anytime-valid (A/A false rollbacks stay under alpha when looking every 25 conversations),
degradations roll back, the circuit breaker compares the candidate's critical breaches with the baseline's, thin data holds, promotion needs non-inferiority."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pytest

from schemas.rollout import CanaryConfig, CanaryMetric, RolloutFlag
from streams.rollout import analysis
from streams.rollout.analysis import CanaryAnalyzer, CanaryWindow, Conversation, Moments, half_width

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
METRICS = (CanaryMetric(name="violation", direction="lower_is_better", margin=0.01),
           CanaryMetric(name="success", direction="higher_is_better", margin=0.03),
           CanaryMetric(name="refusal", direction="band", margin=0.03),
           CanaryMetric(name="latency", direction="lower_is_better", margin=0.03, threshold=2.0))
BASE = {"violation": 0.01, "success": 0.8, "refusal": 0.05, "latency_mu": 0.0}


def _config(**over) -> CanaryConfig:
    return CanaryConfig(metrics=METRICS, **{"min_conversations": 100, "min_conversations_per_step": 50,
                                            "burn_in": 30, **over})


def _conversation(rng: np.random.Generator, p: dict, judged: bool = True) -> Conversation:
    return Conversation(values={"violation": float(rng.random() < p["violation"]),
                                "success": float(rng.random() < p["success"]),
                                "refusal": float(rng.random() < p["refusal"]),
                                "latency": float(math.exp(rng.normal(p["latency_mu"], 0.5)))}, judged=judged)


def _rollout(analyzer: CanaryAnalyzer, rng: np.random.Generator, cand: dict, horizon: int = 3000,
             look: int = 25, weight: int = 50):
    """Fixed weight; a look every ``look`` conversations. Returns (first non-continue decision, conversations)."""
    window = CanaryWindow()
    for i in range(1, horizon + 1):
        arm = "candidate" if rng.random() < weight / 100 else "baseline"
        analyzer.observe(window, arm, _conversation(rng, cand if arm == "candidate" else BASE))
        if i % look == 0:
            d = analyzer.decide(window, weight, window.candidate.conversations, NOW)
            if d.action in ("rollback", "promote"):
                return d, i
    return None, horizon


def test_half_width_is_the_msprt_boundary() -> None:
    v, tau, alpha = 2.5e-5, 0.01, 0.01
    h = half_width(v, tau, alpha)
    t2 = tau * tau
    lam = math.sqrt(v / (v + t2)) * math.exp(t2 * h * h / (2 * v * (v + t2)))  # mixture likelihood ratio
    assert lam == pytest.approx(1 / alpha, rel=1e-9)
    assert half_width(v / 4, tau, alpha) < h  # more data, narrower


def test_moments_from_sums_match_welford() -> None:
    xs = np.random.default_rng(1).random(500)
    w = Moments()
    for x in xs:
        w.add(float(x))
    s = Moments.of(len(xs), float(xs.sum()), float((xs**2).sum()))
    assert (w.n, w.mean, w.m2) == (s.n, pytest.approx(s.mean), pytest.approx(s.m2))
    assert Moments(n=10).variance() == pytest.approx((1 / 12) * (11 / 12))  # floor: one pseudo-event


def _aa_rollback_rate(seed: int = 7, n: int = 150) -> float:
    analyzer, rng = CanaryAnalyzer(_config(alpha=0.05)), np.random.default_rng(seed)
    outcomes = [_rollout(analyzer, rng, BASE, horizon=2000)[0] for _ in range(n)]
    return sum(d is not None and d.action == "rollback" for d in outcomes) / n


def test_aa_false_rollbacks_stay_under_alpha_with_continuous_peeking(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _aa_rollback_rate() <= 0.05  # measured 0.007 (1 of 150)
    # The same looks with a fixed-horizon z bound (z = 2.5, i.e. alpha/4 two-sided) inflate false rollbacks:
    # this is what the confidence sequence buys (measured 0.13).
    monkeypatch.setattr(analysis, "half_width", lambda v, tau, alpha: 2.5 * math.sqrt(v))
    assert _aa_rollback_rate() > 0.08


@pytest.mark.parametrize(("change", "metric"), [
    ({"violation": 0.05}, "violation"), ({"success": 0.7}, "success"),
    ({"refusal": 0.15}, "refusal"), ({"latency_mu": 0.4}, "latency")])
def test_degraded_candidates_roll_back_on_the_right_metric(change: dict, metric: str) -> None:
    analyzer, rng = CanaryAnalyzer(_config()), np.random.default_rng(11)
    outcomes = [_rollout(analyzer, rng, {**BASE, **change}) for _ in range(20)]
    rolled = [d for d, _ in outcomes if d is not None and d.action == "rollback"]
    assert len(rolled) >= 19
    assert all(metric in d.reason for d in rolled)
    harm = [r for r in rolled[0].metrics if r.verdict == "harm"]
    assert [r.name for r in harm] == [metric]
    assert harm[0].harm_lower > 0 or harm[0].harm_upper < -harm[0].margin


def test_circuit_breaker_trips_at_the_allowance_when_the_baseline_is_clean() -> None:
    for allowance in (0, 2):
        analyzer = CanaryAnalyzer(_config(critical_max=allowance, critical_baseline_min=100))
        window = CanaryWindow()
        for _ in range(100):
            analyzer.observe(window, "baseline", Conversation(values={"violation": 0.0}))
        for i in range(1, allowance + 2):
            analyzer.observe(window, "candidate", Conversation(values={"violation": 0.0}, critical=True))
            d = analyzer.decide(window, 5, i, NOW)
            tripped = (d.action, d.next_weight, d.steps[0].name, d.steps[0].outcome) == (
                "rollback", 0, "circuit_breaker", "tripped")
            assert tripped == (i == allowance + 1), (allowance, i, d.action)
        assert d.counts["candidate"].critical_breaches == allowance + 1
        assert "none in 100 baseline conversations" in d.steps[0].detail


def _breaker_trips(rng: np.random.Generator, rate_c: float, rate_b: float, cfg: CanaryConfig,
                   schedule=((0.05, 4000), (0.25, 1000), (0.5, 1500))) -> int | None:
    """Conversations until the breaker trips (None: it never did), looking after every candidate breach and every
    25 conversations (the statistic jumps only at a candidate breach): the candidate's share ramps like a
    rollout's steps."""
    share = np.concatenate([np.full(n, w) for w, n in schedule])
    cand = rng.random(share.size) < share
    crit = rng.random(share.size) < np.where(cand, rate_c, rate_b)
    looks = np.flatnonzero((crit & cand) | (np.arange(share.size) % 25 == 24))
    n_c, n_b = np.cumsum(cand)[looks], np.cumsum(~cand)[looks]
    k_c, k_b = np.cumsum(crit & cand)[looks], np.cumsum(crit & ~cand)[looks]
    log_m = analysis.breaker_log_ratio(k_c, n_c, k_b, n_b)
    trip = (k_c > cfg.critical_max) & ((log_m >= math.log(1 / cfg.critical_alpha))
                                       | ((k_b == 0) & (n_b >= cfg.critical_baseline_min)))
    hit = np.flatnonzero(trip)
    return int(looks[hit[0]]) + 1 if hit.size else None


def test_circuit_breaker_a_a_with_a_violating_baseline_rarely_trips_and_a_worse_candidate_trips_fast() -> None:
    """The baseline breaches too (3 % and 1 % of conversations): an A/A rollout trips in at most about alpha of
    runs over a ramp 5 -> 25 -> 50 %; a candidate at 5x the baseline's rate trips in every run, mostly within
    the 5 % step."""
    cfg, rng = _config(), np.random.default_rng(11)
    assert cfg.critical_alpha == 0.01
    runs = 300
    false = sum(_breaker_trips(rng, r, r, cfg) is not None for r in (0.03, 0.01) for _ in range(runs))
    assert false <= 2 * cfg.critical_alpha * 2 * runs, false  # measured: 5 of 600 (0.8 %)
    fast = [_breaker_trips(rng, 0.05, 0.01, cfg) for _ in range(100)]
    print("A/A trips", false, "of", 2 * runs, "; 5x: conversations to trip, quartiles",
          np.percentile([t or 10**9 for t in fast], [25, 50, 75, 100]))  # noqa: T201 (shown with -s)
    assert all(t is not None for t in fast), fast
    assert float(np.median(fast)) < 4000
    # and the analyzer's own decision agrees with the vectorised statistic at a tripping point
    analyzer, window = CanaryAnalyzer(cfg), CanaryWindow()
    for i in range(600):
        analyzer.observe(window, "baseline", Conversation(values={}, critical=i % 100 == 0))
    for i in range(60):
        analyzer.observe(window, "candidate", Conversation(values={}, critical=i % 10 == 0))
    d = analyzer.decide(window, 10, 60, NOW)
    assert d.action == "rollback" and "likelihood ratio" in d.steps[0].detail
    assert analysis.breaker_log_ratio(6, 60, 6, 600) >= math.log(100)


def test_thin_judge_coverage_holds_and_sample_gates_steps() -> None:
    analyzer, rng = CanaryAnalyzer(_config()), np.random.default_rng(3)
    window = CanaryWindow()
    for i in range(300):
        arm = "candidate" if i % 2 else "baseline"
        analyzer.observe(window, arm, _conversation(rng, BASE, judged=(i % 4 < 2)))  # candidate 50%, base 50%
    assert analyzer.decide(window, 5, 150, NOW).action == "step"
    for i in range(100):
        analyzer.observe(window, "candidate", _conversation(rng, BASE, judged=False))
    d = analyzer.decide(window, 5, 250, NOW)
    assert d.action == "hold" and "candidate" in d.reason and d.next_weight == 5
    fresh = CanaryWindow()
    for i in range(120):
        analyzer.observe(fresh, "candidate" if i % 2 else "baseline", _conversation(rng, BASE))
    assert analyzer.decide(fresh, 5, 60, NOW).action == "continue"  # 60 per arm < min_conversations 100
    start = CanaryWindow()
    for judged in (False, False, True):
        analyzer.observe(start, "candidate", _conversation(rng, BASE, judged=judged))
    assert analyzer.decide(start, 5, 3, NOW).action == "continue"  # 2 of 3 unjudged: too early to call thin


def test_steps_follow_the_plan_and_promotion_needs_non_inferiority() -> None:
    analyzer, rng = CanaryAnalyzer(_config(steps=(5, 25, 50, 100))), np.random.default_rng(5)
    window = CanaryWindow()
    for i in range(400):
        analyzer.observe(window, "candidate" if i % 2 else "baseline", _conversation(rng, BASE))
    assert analyzer.decide(window, 5, 200, NOW).next_weight == 25
    assert analyzer.decide(window, 25, 200, NOW).next_weight == 50
    assert analyzer.decide(window, 25, 10, NOW).action == "continue"  # too few at the new weight
    early = analyzer.decide(window, 50, 200, NOW)
    assert early.action == "continue" and "non-inferiority not shown" in early.reason
    for i in range(20_000):
        analyzer.observe(window, "candidate" if i % 2 else "baseline", _conversation(rng, BASE))
    late = analyzer.decide(window, 50, 10_000, NOW)
    assert late.action == "promote" and late.next_weight == 100
    assert all(r.verdict == "non_inferior" and r.ni_upper < r.margin for r in late.metrics)


def test_decision_records_every_step_and_serialises() -> None:
    analyzer, rng = CanaryAnalyzer(_config()), np.random.default_rng(9)
    window = CanaryWindow()
    for i in range(400):
        analyzer.observe(window, "candidate" if i % 2 else "baseline", _conversation(rng, BASE))
    flag = RolloutFlag(agent_id="support-bot", rollout_id="r7", version=12, stage="canary",
                       baseline={"policy_id": "base"},
                       candidate={"policy_id": "p1", "adapter_id": "a@1", "adapter_hash": "sha256:ab"},
                       weights={"candidate": 5, "baseline": 95})
    d = analyzer.decide(window, 5, 200, NOW, flag=flag)
    assert (d.agent_id, d.rollout_id, d.flag_version, d.candidate_adapter_hash) == ("support-bot", "r7", 12,
                                                                                     "sha256:ab")
    assert [s.name for s in d.steps] == ["circuit_breaker", "metric_tests", "coverage", "sample", "decide"]
    assert d.counts["baseline"].conversations == 200 and {r.name for r in d.metrics} == {m.name for m in METRICS}
    assert all((r.alpha_harm, r.alpha_ni) == (pytest.approx(0.05 / 4), 0.05) for r in d.metrics)
    json.loads(d.model_dump_json())


def test_non_finite_and_unknown_values_are_ignored() -> None:
    analyzer = CanaryAnalyzer(_config())
    window = CanaryWindow()
    analyzer.observe(window, "candidate", Conversation(values={"violation": float("nan"), "other": 1.0,
                                                               "success": None}))
    assert window.candidate.conversations == 1 and window.candidate.metrics == {}


def test_bad_config_raises_at_construction() -> None:
    with pytest.raises(ValueError, match="steps must increase"):
        _config(steps=(5, 50))
    with pytest.raises(ValueError, match="unique"):
        CanaryConfig(metrics=(METRICS[0], METRICS[0]))
