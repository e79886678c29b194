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


_VERDICT_SETATTR = object.__setattr__
_ALL_FIELDS = set(Verdict.model_fields)


def make_verdict(judge: str, version: str, scores: dict[str, float] | None = None, *, confidence: float = 1.0, passed: bool = True,
                 reasons: list[str] | None = None, tags: list[str] | None = None,
                 status: str = "ok") -> Verdict:
    """A ``Verdict`` built without pydantic validation, for fast judges' hot path (~2x cheaper than ``Verdict(...)``).

    Only for values the caller controls: scores already in [0, 1], a known status. The contract test suite checks
    that every fast judge's verdicts survive ``Verdict.model_validate`` unchanged.
    """
    v = object.__new__(Verdict)
    _VERDICT_SETATTR(v, "__dict__", {"judge": judge, "judge_version": version, "status": status, "scores": scores or {},
                                     "confidence": confidence, "passed": passed, "reasons": reasons or [],
                                     "tags": tags or [], "error": None})
    # One shared, complete fields-set: pydantic only ever adds names to it, and every name is already there.
    _VERDICT_SETATTR(v, "__pydantic_fields_set__", _ALL_FIELDS)
    _VERDICT_SETATTR(v, "__pydantic_extra__", None)
    _VERDICT_SETATTR(v, "__pydantic_private__", None)
    return v


class Judge(ABC):
    name: str = "judge"
    version: str = "1"

    @abstractmethod
    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict: ...


def error_verdict(judge: Judge, exc: BaseException) -> Verdict:
    return Verdict(judge=getattr(judge, "name", type(judge).__name__),
                   judge_version=str(getattr(judge, "version", "?")), status="error", passed=True,
                   confidence=0.0, error=f"{type(exc).__name__}: {exc}"[:500],
                   reasons=["judge raised; verdict unavailable"], tags=["judge_error"])


def safe_judge(judge: Judge, trace: Trace, ctx: JudgeContext) -> Verdict:
    """Run one judge; a judge that raises yields ``status="error"`` instead of crashing the pipeline."""
    try:
        return judge.judge(trace, ctx)
    except Exception as exc:  # a judge bug costs one verdict, never the worker
        return error_verdict(judge, exc)


class GuardedJudge(Judge):
    """Wraps a judge so callers that invoke ``judge()`` directly (the pipeline) get ``safe_judge`` semantics."""

    def __init__(self, inner: Judge):
        self.inner = inner
        self.name = inner.name
        self.version = inner.version

    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict:
        try:  # inline rather than safe_judge(): this runs six times per trace on the hot path
            v = self.inner.judge(trace, ctx)
        except Exception as exc:
            v = error_verdict(self.inner, exc)
        # Later judges (the learning judge) read earlier verdicts of the same trace from the context.
        seen = ctx.cache.get("verdicts")
        if seen is None:
            ctx.cache["verdicts"] = [v]
        else:
            seen.append(v)
        return v

    def __repr__(self) -> str:
        return f"GuardedJudge({self.inner!r})"
