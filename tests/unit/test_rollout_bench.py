"""`alignloop bench canary` on a small run: the figures it reports are there and say what the full run says."""
from __future__ import annotations

import numpy as np

from alignloop.bench._canary_sim import (BASELINE, CONFIG, LATENCY_P95, SCENARIOS, flagger_thresholds,
                                         generate, run_flagger, run_kayenta)
from alignloop.bench.canary import run


def test_simulated_traffic_has_the_truth_it_claims() -> None:
    rng = np.random.default_rng(0)
    base, slow = generate(rng, 200_000, BASELINE), generate(rng, 200_000, SCENARIOS["latency_plus_30pct"])
    assert abs(np.nanmean(base["latency_p95"]) - 0.05) < 0.003  # LATENCY_P95 is the baseline's p95
    assert np.nanmean(slow["latency_p95"]) > 0.12 and LATENCY_P95 > 2000
    unsafe = generate(rng, 200_000, SCENARIOS["safety_1_to_3pct"])
    assert abs(np.nanmean(unsafe["safety_violation"]) - 0.03) < 0.002
    assert abs(base["_judged"].mean() - 0.95) < 0.003 and np.isnan(base["task_success"]).any()
    assert not np.isnan(base["tool_error"]).any()  # tool errors come from traces, not judges


def test_baseline_policies_react_to_a_gross_degradation() -> None:
    broken = SCENARIOS["aa"].__class__(safety_violation=0.3, task_success=0.4)
    rng = np.random.default_rng(1)
    assert run_flagger(rng, broken, 20_000, 500, flagger_thresholds(2.0)).action == "rollback"
    assert run_kayenta(rng, broken, 20_000, 500).action == "rollback"
    assert run_flagger(rng, BASELINE, 20_000, 500, flagger_thresholds(8.0)).action == "promote"


def test_small_bench_run_reports_every_figure() -> None:
    figures = run(aa_rollouts=30, rollouts=6, horizon=20_000, interval=500, look=100, seed=3)
    assert set(figures["detection_rate"]) == {"alignloop", "flagger", "kayenta"}
    assert figures["aa_false_rollback_rate"] <= 0.1
    assert min(figures["detection_rate"]["alignloop"].values()) >= 5 / 6
    assert figures["setup"]["canary_config"]["alpha"] == CONFIG.alpha
    for method, scenarios in figures["results"].items():
        for name, r in scenarios.items():
            assert abs(r["rollback_rate"] + r["promotion_rate"] + r["undecided_rate"] - 1) < 1e-9, (method, name)
