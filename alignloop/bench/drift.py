"""`alignloop bench drift`: injected drifts in simulated streams, monitors run in-process at 500 traces/s.

Per seed, one stable prefix (warm-up + stable traffic) is simulated, judged by the real pipeline and fed to the
monitors once; then every scenario continues from a copy of that exact state (same simulator RNG, same
monitors) with its drift injected at the first post-prefix trace. Timestamps are simulated wall time at
``--rate`` traces/s, so delays are seconds of stream time. A plain river ADWIN on raw per-trace values runs on the
same streams as the baseline.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import typer

from alignloop.simulate import Drift, Simulator

# (name, knob changes, ramp in traces). Score shifts come from behaviour the judges grade (low-quality answers,
# hidden tool failures), so the judge-score signals move the way they would in production.
SCENARIOS: list[tuple[str, dict[str, Any], int]] = [
    ("tool_failure_abrupt", {"tool_failure_rate": 0.16}, 0),
    ("tool_failure_gradual", {"tool_failure_rate": 0.2}, 10_000),
    ("refusal_abrupt", {"over_refusal_rate": 0.06}, 0),
    ("refusal_gradual", {"over_refusal_rate": 0.08}, 10_000),
    ("topic_mix_abrupt", {"domain_weights": (2.0, 1.0, 1.0, 0.5, 0.5)}, 0),
    ("topic_mix_gradual", {"domain_weights": (1.0, 0.5, 1.0, 2.0, 1.0)}, 10_000),
    ("response_style_abrupt", {"verbosity": 2.0}, 0),
    ("response_style_gradual", {"verbosity": 0.5}, 10_000),
    ("score_shift_abrupt", {"low_quality_rate": 0.09}, 0),
    ("score_shift_gradual", {"unhandled_failure_rate": 0.6}, 10_000),
]


@dataclass
class Alarm:
    signal: str
    at_s: float  # stream seconds since the stream start


class Stream:
    """The simulator + pipeline + monitors of one seed, copyable at the change point."""

    def __init__(self, seed: int, rate: float, pipeline: Any, bank: Any, baseline: dict[str, Any]):
        self.sim = Simulator(seed=seed, rate_hint=rate)
        self.pipeline, self.bank, self.baseline = pipeline, bank, baseline
        self.i = 0
        self.start = self.sim.start

    def run(self, n: int) -> tuple[list[Alarm], list[Alarm]]:
        """Advance n traces; returns (monitor alarms, baseline alarms)."""
        from river.drift import ADWIN

        from streams.drift.signals import scalar_signals

        alarms, base = [], []
        judged = []
        for _ in range(n):
            rec, _truth = self.sim.trace(self.i)
            out = self.pipeline.process(json.dumps(rec).encode(), "bench", 0, self.i)
            self.i += 1
            if not hasattr(out, "trace"):
                continue
            judged.append(out)
            t_s = (out.trace.timestamp - self.start).total_seconds()
            for name, v in scalar_signals(out, self.bank.cfg.signals).items():
                det = self.baseline.setdefault(name, ADWIN())
                det.update(v)
                if det.drift_detected:
                    base.append(Alarm(name, t_s))
            if len(judged) >= 500:
                alarms += self._feed(judged)
                judged = []
        alarms += self._feed(judged)
        return alarms, base

    def _feed(self, judged: list[Any]) -> list[Alarm]:
        return [Alarm(a.signal, (a.detected_at - self.start).total_seconds()) for a in self.bank.observe(judged)]


def _pipeline() -> Any:
    from alignloop.configs import load_configs
    from schemas.settings import load_settings
    from streams.pipeline import Pipeline

    settings = load_settings()
    return Pipeline.from_settings(settings, load_configs(settings))


def run_seed(seed: int, prefix: int, post: int, rate: float, scenarios: list[str] | None = None,
             progress: Any = None) -> dict[str, Any]:
    """One seed: the shared stable prefix, a no-drift continuation, and every scenario from the same state."""
    from schemas.settings import load_settings
    from streams.drift import MonitorBank, load_drift_config

    cfg = load_drift_config(load_settings().drift_config)
    chosen = [s for s in SCENARIOS if not scenarios or s[0] in scenarios]
    warmup_traces = cfg.monitor.block * cfg.monitor.warmup_blocks * 2  # embeddings warm up in two stages
    if prefix <= warmup_traces:
        raise ValueError(f"--prefix must exceed the warm-up ({warmup_traces} traces)")
    pipeline = _pipeline()
    out: dict[str, Any] = {"results": [], "fa": {}, "base_fa": {}, "base_delays": [], "stable": 0}
    stream = Stream(seed, rate, pipeline, MonitorBank(cfg), {})
    alarms, base = stream.run(prefix)
    warm_s = warmup_traces / rate
    for key, found in (("fa", alarms), ("base_fa", base)):
        for a in found:
            if a.at_s >= warm_s:
                out[key][a.signal] = out[key].get(a.signal, 0) + 1
    out["stable"] += prefix - warmup_traces
    out["signals"] = sorted({k[1] for k in stream.bank.monitors})
    change_s = prefix / rate
    for name, changes, ramp in [("none", {}, 0), *chosen]:
        s = copy.deepcopy(stream, memo={id(pipeline): pipeline})
        if changes:
            s.sim.drifts = [Drift(at=prefix, changes=changes, ramp=ramp)]
        alarms, base = s.run(post)
        if name == "none":
            out["stable"] += post
            for key, found in (("fa", alarms), ("base_fa", base)):
                for a in found:
                    out[key][a.signal] = out[key].get(a.signal, 0) + 1
            continue
        first = min(alarms, key=lambda a: a.at_s, default=None)
        out["results"].append({"scenario": name, "seed": seed, "detected": first is not None,
                               "delay_s": round(first.at_s - change_s, 2) if first else None,
                               "first_signal": first.signal if first else None,
                               "signals": sorted({a.signal for a in alarms})})
        bfirst = min(base, key=lambda a: a.at_s, default=None)
        out["base_delays"].append(round(bfirst.at_s - change_s, 2) if bfirst else None)
        if progress:
            progress(f"seed {seed} {name}: " + (f"{first.signal} after {first.at_s - change_s:.1f}s"
                                                if first else "missed"))
    return out


def evaluate(seeds: int, prefix: int, post: int, rate: float, scenarios: list[str] | None = None,
             progress: Any = None, jobs: int = 1) -> dict[str, Any]:
    from schemas.settings import load_settings
    from streams.drift import load_drift_config

    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = list(pool.map(run_seed, range(seeds), [prefix] * seeds, [post] * seeds, [rate] * seeds,
                                  [scenarios] * seeds))
    else:
        parts = [run_seed(seed, prefix, post, rate, scenarios, progress) for seed in range(seeds)]
    merged: dict[str, Any] = {"results": [], "fa": {}, "base_fa": {}, "base_delays": [], "stable": 0,
                              "signals": set()}
    for p in parts:
        merged["results"] += p["results"]
        merged["base_delays"] += p["base_delays"]
        merged["stable"] += p["stable"]
        merged["signals"] |= set(p["signals"])
        for key in ("fa", "base_fa"):
            for k, v in p[key].items():
                merged[key][k] = merged[key].get(k, 0) + v
    return _figures(merged["results"], merged["fa"], merged["base_fa"], merged["base_delays"], merged["stable"],
                    merged["signals"], load_drift_config(load_settings().drift_config), rate, prefix, post)


def _figures(results: list[dict[str, Any]], fa: dict[str, int], base_fa: dict[str, int],
             base_results: list[float | None], stable: int, signals: set[str], cfg: Any, rate: float,
             prefix: int, post: int) -> dict[str, Any]:
    delays = [r["delay_s"] for r in results if r["detected"]]
    n_sig = max(1, len(signals))
    per_100k = lambda counts: {k: round(v * 100_000 / stable, 3) for k, v in sorted(counts.items())}  # noqa: E731
    bdel = [d for d in base_results if d is not None]
    return {
        "detected_fraction": round(len(delays) / max(1, len(results)), 4),
        "median_delay_s": round(statistics.median(delays), 2) if delays else None,
        "p90_delay_s": round(sorted(delays)[int(0.9 * (len(delays) - 1))], 2) if delays else None,
        "false_alarms_per_100k": round(sum(fa.values()) * 100_000 / (stable * n_sig), 4),
        "false_alarms_per_100k_worst_signal": max(per_100k(fa).values(), default=0.0),
        "false_alarms_by_signal_per_100k": per_100k(fa),
        "stable_traces_per_signal": stable,
        "signals": sorted(signals),
        "drifts": len(results),
        "rate_traces_per_s": rate, "prefix_traces": prefix, "post_traces": post,
        "detector": cfg.monitor.detector, "detector_params": cfg.monitor.params, "block": cfg.monitor.block,
        "warmup_blocks": cfg.monitor.warmup_blocks,
        "baseline": {"name": "river ADWIN() on raw per-trace scalar signals",
                     "detected_fraction": round(len(bdel) / max(1, len(base_results)), 4),
                     "median_delay_s": round(statistics.median(bdel), 2) if bdel else None,
                     "false_alarms_per_100k": round(sum(base_fa.values()) * 100_000 / (stable * n_sig), 4)},
        "scenarios": results,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("drift")
    def drift(
        seeds: int = typer.Option(3, "--seeds", min=1, help="Independent streams per scenario."),
        prefix: int = typer.Option(40_000, "--prefix", min=1000, help="Stable traces before each change point "
                                                                      "(includes warm-up)."),
        post: int = typer.Option(15_000, "--post", min=100, help="Traces after the change (30 s at 500/s)."),
        rate: float = typer.Option(500.0, "--rate", min=1.0, help="Simulated traces per second."),
        scenario: list[str] = typer.Option([], "--scenario", help="Only these scenarios (repeatable)."),
        calib_traces: int = typer.Option(20_000, "--calib-traces", min=1000, help="Traces for the ECE figures."),
        jobs: int = typer.Option(1, "--jobs", min=1, help="Processes (one seed each)."),
    ) -> None:
        """Detection rate, delay and false alarms of the drift monitors; ECE before/after temperature scaling."""
        from rich.console import Console

        from alignloop.bench._results import print_table, write_result
        from alignloop.bench._drift_calibration import ece_before_after
        from alignloop.errors import UserError

        known = {s[0] for s in SCENARIOS}
        if bad := [s for s in scenario if s not in known]:
            raise UserError(f"unknown scenario {bad[0]!r}; known: {', '.join(sorted(known))}")
        console = Console()
        started = time.perf_counter()
        try:
            figures = evaluate(seeds, prefix, post, rate, scenario, progress=console.log, jobs=jobs)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        figures.update(ece_before_after(calib_traces))
        figures["wall_s"] = round(time.perf_counter() - started, 1)
        figures["run_at"] = datetime.now().isoformat(timespec="seconds")
        path = write_result("drift", figures)
        print_table("drift monitors", [(k, v) for k, v in figures.items() if not isinstance(v, (list, dict))] +
                    [("baseline " + k, v) for k, v in figures["baseline"].items()])
        console.print(f"wrote {path}")
