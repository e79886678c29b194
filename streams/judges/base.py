"""Judge plugin contract: ``judge(trace, ctx) -> Verdict``. Fast judges are pure and cheap."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from schemas.trace import Trace
from schemas.verdict import PiiFinding, Verdict


@dataclass(slots=True)
class JudgeContext:
    """What the pipeline knows about a trace besides the trace itself (already scrubbed)."""

    pii: list[PiiFinding] = field(default_factory=list)  # findings the scrubber made, by field
    # Per-trace scratch space judges share (e.g. lower-cased text, token sets) so each is computed once.
    cache: dict[str, Any] = field(default_factory=dict)


class Judge(ABC):
    name: str = "judge"
    version: str = "1"

    @abstractmethod
    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict: ...


def safe_judge(judge: Judge, trace: Trace, ctx: JudgeContext) -> Verdict:
    """Run one judge; a judge that raises yields ``status="error"`` instead of crashing the pipeline."""
    try:
        return judge.judge(trace, ctx)
    except Exception as exc:  # a judge bug costs one verdict, never the worker
        return Verdict(judge=getattr(judge, "name", type(judge).__name__),
                       judge_version=str(getattr(judge, "version", "?")), status="error", passed=True,
                       confidence=0.0, error=f"{type(exc).__name__}: {exc}"[:500],
                       reasons=["judge raised; verdict unavailable"], tags=["judge_error"])


class GuardedJudge(Judge):
    """Wraps a judge so callers that invoke ``judge()`` directly (the pipeline) get ``safe_judge`` semantics."""

    def __init__(self, inner: Judge):
        self.inner = inner
        self.name = inner.name
        self.version = inner.version

    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict:
        return safe_judge(self.inner, trace, ctx)

    def __repr__(self) -> str:
        return f"GuardedJudge({self.inner!r})"
