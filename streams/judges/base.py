"""Judge plugin contract: ``judge(trace, ctx) -> Verdict``. Fast judges are pure and cheap.

``run_judges`` is the one guard: every caller (the pipeline, the SDK, curation) runs its judges through it, so a
judge that raises costs one error verdict, never the caller.

Shared verdicts (the one fast path kept here): most traces get a judge's "nothing found" verdict or a finding
seen before, so each such verdict is built once and handed to every trace that earns it (``shared_verdict`` for
a judge's fixed outcomes, ``VerdictInterner`` for the rest, keyed by content). The plain version is
``make_verdict`` per trace; sharing saves building ~6 pydantic objects per trace (~7 us, measured in process). ``Verdict`` is frozen and the lists and dict inside a
shared one refuse changes, so handing it out again is safe.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable

from schemas.trace import Trace
from schemas.verdict import PiiFinding, Verdict


@dataclass(slots=True)
class JudgeContext:
    """What the pipeline knows about a trace besides the trace itself (already scrubbed)."""

    pii: list[PiiFinding] = field(default_factory=list)  # findings the scrubber made, by field
    # Per-trace scratch space judges share (``run_judges`` keeps the verdicts so far under "verdicts").
    cache: dict[str, Any] = field(default_factory=dict)
    # The trace's shared TextView (built by streams.judges._text.text_view on first use).
    view: Any = field(default=None, repr=False, compare=False)


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


def run_judges(judges: Iterable[Judge], trace: Trace, ctx: JudgeContext | None = None) -> list[Verdict]:
    """Every judge's verdict for ``trace``, in order. A judge that raises yields a ``status="error"`` verdict
    instead of crashing the caller; later judges (the learning judge) see the verdicts so far in
    ``ctx.cache["verdicts"]``."""
    ctx = ctx if ctx is not None else JudgeContext()
    verdicts: list[Verdict] = []
    ctx.cache["verdicts"] = verdicts
    for j in judges:
        try:
            verdicts.append(j.judge(trace, ctx))
        except Exception as exc:  # a judge bug costs one verdict, never the worker
            verdicts.append(error_verdict(j, exc))
    return verdicts


def make_verdict(judge: str, version: str, scores: dict[str, float] | None = None, *, confidence: float = 1.0,
                 passed: bool = True, reasons: list[str] | None = None, tags: list[str] | None = None,
                 status: str = "ok") -> Verdict:
    """A ``Verdict`` built without validation (``model_construct``), for values the caller controls: scores
    already floats in [0, 1], a known status. The contract test suite checks that every fast judge's verdicts
    survive ``Verdict.model_validate`` unchanged."""
    return Verdict.model_construct(judge=judge, judge_version=version, status=status,
                                   scores={} if scores is None else scores, confidence=confidence, passed=passed,
                                   reasons=[] if reasons is None else reasons, tags=[] if tags is None else tags,
                                   error=None)


def verdict_template(judge: str, version: str, confidence: float, passed: bool, status: str = "ok") -> dict[str, Any]:
    """The fixed fields of a verdict a judge returns often (its "nothing found" verdict), for ``shared_verdict``."""
    return {"judge": judge, "version": version, "confidence": confidence, "passed": passed, "status": status}


def _refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("a shared verdict is read-only: make a changed copy with verdict.model_copy(update={...})")


class ReadOnlyList(list):  # type: ignore[type-arg]
    """The lists inside a shared verdict: a list to readers and serialisers, an error to anything that changes it
    (a change would reach every trace that verdict is handed to)."""

    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class ReadOnlyDict(dict):  # type: ignore[type-arg]
    """The scores inside a shared verdict (see ``ReadOnlyList``)."""

    __slots__ = ()
    update = pop = popitem = clear = setdefault = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse


def shared_verdict(template: dict[str, Any], scores: dict[str, float], reasons: list[str] | None = None,
                   tags: list[str] | None = None) -> Verdict:
    """One read-only verdict from a ``verdict_template``, made when a judge is built or first meets an outcome,
    and returned for every trace that gets it."""
    return make_verdict(template["judge"], template["version"], ReadOnlyDict(scores),
                        confidence=template["confidence"], passed=template["passed"],
                        reasons=ReadOnlyList(reasons or ()), tags=ReadOnlyList(tags or ()), status=template["status"])


def is_shared(verdict: Verdict) -> bool:
    """Whether ``verdict`` is a shared one (``shared_verdict``): the same object, with the same content, for every
    trace that gets it. A public test for encoders that keep a shared verdict's JSON."""
    return type(verdict.tags) is ReadOnlyList


class VerdictInterner:
    """A judge's less common verdicts (findings with their tags and reasons), shared: each distinct verdict is
    built once and handed to every trace that earns it. Findings recur (the same tool failing the same way, the
    same risk tag), so most are seen before. Keyed by the verdict's content; bounded: past ``limit`` distinct
    verdicts, new ones are built fresh instead of kept."""

    __slots__ = ("judge", "version", "limit", "_made")

    def __init__(self, judge: str, version: str, limit: int = 2048) -> None:
        self.judge, self.version, self.limit = judge, version, limit
        self._made: dict[tuple[Any, ...], Verdict] = {}

    def get(self, status: str, scores: dict[str, float], confidence: float, passed: bool, reasons: list[str],
            tags: list[str]) -> Verdict:
        """The verdict ``make_verdict(judge, version, scores, ...)`` with these fields, shared. Scores are floats
        (as ``Verdict`` validates them), so equal keys serialise alike."""
        key = (status, *scores.items(), confidence, passed, *reasons, None, *tags)
        v = self._made.get(key)
        if v is None:
            if len(self._made) >= self.limit:  # full: the same content, built fresh with lists of its own
                return make_verdict(self.judge, self.version, dict(scores), confidence=confidence, passed=passed,
                                    reasons=list(reasons), tags=list(tags), status=status)
            template = verdict_template(self.judge, self.version, confidence, passed, status)
            v = self._made[key] = shared_verdict(template, scores, reasons, tags)
        return v
