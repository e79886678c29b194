"""`alignloop bench canary`: alignloop's canary analyzer against Flagger- and Kayenta-style analysis.

Simulated judged traffic with a known truth (``alignloop/bench/_canary_sim.py``): A/A rollouts (candidate ==
baseline) give the false-rollback rate; degraded candidates (safety violations 1% -> 3%, task success -0.05,
latency +30%) the detection rate and conversations to rollback; an improved candidate the promotion rate and
conversations to promotion. Targets for alignloop: ``aa_false_rollback_rate`` <= 0.05, detection >= 0.95.
"""
from __future__ import annotations

import math
import statistics
import time
import zlib
from typing import Any, Callable

import typer

DEGRADED = ("safety_1_to_3pct", "task_success_minus_0.05", "latency_plus_30pct")
FLAGGER_K_GRID = tuple(k / 2 for k in range(2, 17))  # 1.0, 1.5, ... 8.0 margins


def _median(xs: list[float]) -> float | None:
    """None when empty or when the median is a miss (inf): more than half the rollouts never got there."""
    m = statistics.median(xs) if xs else math.inf
    return None if math.isinf(m) else float(m)


def _summarise(outcomes: list) -> dict[str, Any]:
    rb = [o for o in outcomes if o.action == "rollback"]
    pr = [o for o in outcomes if o.action == "promote"]
    n = len(outcomes)
    return {
        "rollouts": n, "rollback_rate": len(rb) / n, "promotion_rate": len(pr) / n,
        "undecided_rate": (n - len(rb) - len(pr)) / n,
        # Over every rollout, a rollout that never rolled back counting as infinitely late (a miss): medians
        # over the detected ones alone would favour a method that detects rarely but early by luck.
        "median_conversations_to_rollback": _median([o.conversations if o.action == "rollback" else math.inf
                                                     for o in outcomes]),
        "median_candidate_conversations_to_rollback": _median(
            [o.candidate_conversations if o.action == "rollback" else math.inf for o in outcomes]),
        "median_conversations_to_rollback_when_detected": _median([o.conversations for o in rb]),
        "median_conversations_to_promotion": _median([o.conversations if o.action == "promote" else math.inf
                                                      for o in outcomes]),
    }


def _calibrate_flagger(rng_for: Callable, rollouts: int, horizon: int, interval: int) -> tuple[float, dict]:
    """The smallest k on the grid whose A/A false-rollback rate is <= 0.05 (on seeds the bench never reuses)."""
    from alignloop.bench._canary_sim import BASELINE, flagger_thresholds, run_flagger

    rates = {}
    for k in FLAGGER_K_GRID:
        rng = rng_for("flagger-calibration", int(k * 10))
        outs = [run_flagger(rng, BASELINE, horizon, interval, flagger_thresholds(k)) for _ in range(rollouts)]
        rates[k] = sum(o.action == "rollback" for o in outs) / rollouts
        if rates[k] <= 0.05:
            return k, rates
    return FLAGGER_K_GRID[-1], rates


def run(aa_rollouts: int, rollouts: int, horizon: int, interval: int, look: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from alignloop.bench._canary_sim import CONFIG, SCENARIOS, flagger_thresholds, run_alignloop, run_flagger, \
        run_kayenta
    from streams.rollout.analysis import CanaryAnalyzer

    started = time.perf_counter()

    def rng_for(*key: Any) -> Any:
        # crc32, not hash(): str hashes change per process and the bench must be reproducible.
        return np.random.default_rng([seed, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key)])

    k, calibration = _calibrate_flagger(rng_for, max(100, aa_rollouts // 2), horizon, interval)
    limits = flagger_thresholds(k)
    analyzer = CanaryAnalyzer(CONFIG)
    methods = {
        "alignloop": lambda rng, p: run_alignloop(rng, p, horizon, look, analyzer),
        "flagger": lambda rng, p: run_flagger(rng, p, horizon, interval, limits),
        "kayenta": lambda rng, p: run_kayenta(rng, p, horizon, interval),
    }
    results: dict[str, dict[str, Any]] = {m: {} for m in methods}
    seconds: dict[str, float] = {}
    for method, policy in methods.items():
        t0 = time.perf_counter()
        for name, profile in SCENARIOS.items():
            n = aa_rollouts if name == "aa" else rollouts
            rng = rng_for(method, name)
            results[method][name] = _summarise([policy(rng, profile) for _ in range(n)])
        seconds[method] = time.perf_counter() - t0
    figures: dict[str, Any] = {
        "aa_false_rollback_rate": results["alignloop"]["aa"]["rollback_rate"],
        "flagger_aa_false_rollback_rate": results["flagger"]["aa"]["rollback_rate"],
        "kayenta_aa_false_rollback_rate": results["kayenta"]["aa"]["rollback_rate"],
        "detection_rate": {m: {s: results[m][s]["rollback_rate"] for s in DEGRADED} for m in methods},
        "median_conversations_to_rollback": {
            m: {s: results[m][s]["median_conversations_to_rollback"] for s in DEGRADED} for m in methods},
        # A degraded candidate that reaches 100% is the failure that matters most.
        "degraded_promotion_rate": {m: {s: results[m][s]["promotion_rate"] for s in DEGRADED} for m in methods},
        "improved_promotion_rate": {m: results[m]["improved"]["promotion_rate"] for m in methods},
        "improved_median_conversations_to_promotion": {
            m: results[m]["improved"]["median_conversations_to_promotion"] for m in methods},
        "results": results,
        "setup": {"aa_rollouts": aa_rollouts, "rollouts_per_scenario": rollouts, "horizon_conversations": horizon,
                  "interval_conversations": interval, "alignloop_look_conversations": look, "seed": seed,
                  "flagger_k": k, "flagger_calibration_aa_rates": calibration,
                  "canary_config": CONFIG.model_dump(mode="json")},
        "seconds_per_method": seconds,
    }
    figures["targets"] = {"aa_false_rollback_rate_max": 0.05, "detection_rate_min": 0.95}
    figures["targets_met"] = (figures["aa_false_rollback_rate"] <= 0.05
                              and all(v >= 0.95 for v in figures["detection_rate"]["alignloop"].values()))
    figures["seconds"] = time.perf_counter() - started
    return figures


def _table(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    res = figures["results"]
    table = Table(title="canary analysis (simulated judged traffic, known truth)")
    table.add_column("scenario")
    table.add_column("figure")
    for m in res:
        table.add_column(m, justify="right")
    rows = [("aa", "false rollback rate", "rollback_rate"), ("aa", "promotion rate", "promotion_rate")]
    for s in DEGRADED:
        rows += [(s, "detection rate", "rollback_rate"), (s, "promoted anyway", "promotion_rate"),
                 (s, "median conversations to rollback", "median_conversations_to_rollback"),
                 (s, "median candidate conversations", "median_candidate_conversations_to_rollback"),
                 (s, "median conversations when detected", "median_conversations_to_rollback_when_detected")]
    rows += [("improved", "promotion rate", "promotion_rate"), ("improved", "false rollback rate", "rollback_rate"),
             ("improved", "median conversations to promotion", "median_conversations_to_promotion")]
    for scenario, label, key in rows:
        vals = [res[m][scenario][key] for m in res]
        table.add_row(scenario, label, *("never" if v is None else f"{v:.3f}" if isinstance(v, float) and v < 1.5
                                         else f"{v:,.0f}" for v in vals))
    Console().print(table)


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("canary")
    def canary(aa_rollouts: int = typer.Option(500, help="A/A rollouts (candidate identical to baseline)."),
               rollouts: int = typer.Option(200, help="Rollouts per degraded/improved scenario."),
               horizon: int = typer.Option(40_000, help="Conversations per rollout before it counts undecided."),
               interval: int = typer.Option(500, help="Conversations per analysis interval (Flagger/Kayenta)."),
               look: int = typer.Option(100, help="Conversations between alignloop's looks."),
               seed: int = typer.Option(14)) -> None:
        """False rollbacks (A/A), detection and conversations to rollback/promotion, vs Flagger and Kayenta."""
        from alignloop.bench._results import write_result

        if interval % 10 or interval < 10 or look < 1:
            raise typer.BadParameter("--interval must be a positive multiple of 10 and --look >= 1")
        figures = run(aa_rollouts, rollouts, horizon, interval, look, seed)
        _table(figures)
        typer.echo(f"flagger thresholds: baseline +- {figures['setup']['flagger_k']} margins (calibrated on A/A); "
                   f"targets met: {figures['targets_met']}; {figures['seconds']:.0f} s")
        typer.echo(f"wrote {write_result('canary', figures)}")
