"""Judged traces for drift tests, built straight from the simulator (no scrubbing or judging: fast)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from alignloop.simulate import Drift, Simulator
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict
from streams.drift.config import DriftConfig, MonitorConfig

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def small_config(**kw: Any) -> DriftConfig:
    """Blocks of 50 traces and 30 warm-up blocks so tests need thousands, not tens of thousands, of traces."""
    mon = MonitorConfig(block=50, warmup_blocks=30)
    return DriftConfig(monitor=mon, **kw)


def judged_stream(seed: int, n: int, start: int = 0, drifts: list[Drift] | None = None,
                  partition: int = 0, sim: Simulator | None = None) -> Iterator[JudgedTrace]:
    sim = sim or Simulator(seed=seed, drifts=drifts, rate_hint=500)
    for i in range(start, start + n):
        rec, truth = sim.trace(i)
        trace = Trace.model_validate(rec)
        v = Verdict(judge="truth", scores={"task_success": 0.0 if truth.bad else 1.0}, passed=not truth.bad,
                    confidence=0.9)
        yield JudgedTrace(trace=trace, verdicts=[v], outcome="fail" if truth.bad else "pass",
                          source=SourceRef(topic="agent.traces", partition=partition, offset=i), processed_at=NOW)
