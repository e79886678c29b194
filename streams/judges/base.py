"""Judge plugin contract: ``judge(trace, ctx) -> Verdict``. Fast judges are pure and cheap."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas.trace import Trace
from schemas.verdict import PiiFinding, Verdict


class _NoView:
    __slots__ = ()
    trace = None


NO_VIEW: Any = _NoView()  # JudgeContext.view before any judge built the trace's view


@dataclass(slots=True)
class JudgeContext:
    """What the pipeline knows about a trace besides the trace itself (already scrubbed)."""

    pii: list[PiiFinding] = field(default_factory=list)  # findings the scrubber made, by field
    # Per-trace scratch space judges share (e.g. the verdicts so far, for the learning judge).
    cache: dict[str, Any] = field(default_factory=dict)
    # The trace's shared TextView (streams.judges._text.text_view); a slot, not a cache key: every judge reads it.
    # Never None (a placeholder whose .trace is None), so the judges' freshness test is one identity check.
    view: Any = field(default=NO_VIEW, repr=False, compare=False)


_ALL_FIELDS = set(Verdict.model_fields)
# BaseModel's slot descriptors, called directly: cheaper than object.__setattr__'s lookup through the MRO.
_NEW = object.__new__
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def new_verdict(judge: str, version: str, status: str, scores: dict[str, float], confidence: float, passed: bool,
                reasons: list[str], tags: list[str]) -> Verdict:
    """``make_verdict`` with every field given positionally (no keyword handling, no ``or`` defaults).

    The caller passes fresh ``scores``/``reasons``/``tags`` objects: the verdict keeps them, not copies.
    """
    return _assemble({"judge": judge, "judge_version": version, "status": status, "scores": scores,
                      "confidence": confidence, "passed": passed, "reasons": reasons, "tags": tags, "error": None})


def _assemble(fields: dict[str, Any]) -> Verdict:
    """A ``Verdict`` holding ``fields`` (every field, valid by construction) as its ``__dict__``, unvalidated."""
    v = _NEW(Verdict)
    _SET_DICT(v, fields)
    # One shared, complete fields-set: pydantic only ever adds names to it, and every name is already there.
    _SET_FIELDS_SET(v, _ALL_FIELDS)
    _SET_EXTRA(v, None)
    _SET_PRIVATE(v, None)
    return v


def verdict_template(judge: str, version: str, confidence: float, passed: bool, status: str = "ok") -> dict[str, Any]:
    """The fixed fields of a verdict a judge returns often (its "nothing found" verdict), for ``from_template``."""
    return {"judge": judge, "judge_version": version, "status": status, "scores": None, "confidence": confidence,
            "passed": passed, "reasons": None, "tags": None, "error": None}


def from_template(template: dict[str, Any], scores: dict[str, float], reasons: list[str],
                  tags: list[str]) -> Verdict:
    """``new_verdict`` from a ``verdict_template``: copying a 9-key dict and setting three keys costs half of
    building it from a literal (~15% of the whole verdict). ``scores``/``reasons``/``tags`` must be fresh objects,
    as for new_verdict."""
    d = template.copy()
    d["scores"] = scores
    d["reasons"] = reasons
    d["tags"] = tags
    return _assemble(d)


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


# Every shared verdict, by id. Held here, so none is ever freed and its id stays its own: the pipeline keys its
# per-combination summaries (streams.pipeline.summarize) by these ids.
SHARED: dict[int, Verdict] = {}


def shared_verdict(template: dict[str, Any], scores: dict[str, float], reasons: list[str] | None = None,
                   tags: list[str] | None = None) -> Verdict:
    """One verdict from a ``verdict_template``, built once and returned for every trace that gets it (a judge's
    "nothing found" outcome, most of its verdicts): no per-trace object to build, and identical JSON. ``Verdict``
    is frozen and the lists and dict inside a shared one refuse changes, so handing it out again is safe. Made
    when a judge is built (a handful per judge), never per trace: ``SHARED`` keeps each one."""
    v = from_template(template, ReadOnlyDict(scores), ReadOnlyList(reasons or ()), ReadOnlyList(tags or ()))
    SHARED[id(v)] = v
    return v


def _keep(made: dict[Any, Verdict], limit: int, key: Any, template: dict[str, Any], scores: dict[str, float],
          reasons: list[str] | None, tags: list[str] | None) -> Verdict:
    """The verdict for a key not yet in ``made``: shared and kept under ``key``, or past ``limit`` keys built fresh
    (the same content, lists of its own) instead of kept."""
    if len(made) >= limit:
        return from_template(template, scores, list(reasons or ()), list(tags or ()))
    v = made[key] = shared_verdict(template, scores, reasons, tags)
    return v


class VerdictCache:
    """Shared verdicts keyed by what varies among a judge's common outcomes (e.g. quality's helpfulness score),
    bounded: past ``limit`` distinct keys, verdicts are built fresh instead of kept."""

    __slots__ = ("template", "limit", "_made")

    def __init__(self, template: dict[str, Any], limit: int = 256) -> None:
        self.template, self.limit = template, limit
        self._made: dict[Any, Verdict] = {}

    def get(self, key: Any, scores: dict[str, float], tags: list[str] | None = None) -> Verdict:
        """The shared verdict for ``key``, whose scores and tags are ``scores`` and ``tags`` (built on the first
        call with this key: the key must determine them)."""
        v = self._made.get(key)
        return v if v is not None else _keep(self._made, self.limit, key, self.template, scores, None, tags)


class VerdictInterner:
    """A judge's less common verdicts (findings with their tags and reasons), shared like ``shared_verdict``'s:
    each distinct verdict is built once and handed to every trace that earns it, so its JSON and the summary of
    every verdict list made of shared verdicts are worked out once (streams.pipeline.summarize). Findings recur
    (the same tool failing the same way, the same risk tag), so most are seen before. Bounded: past ``limit``
    distinct verdicts, new ones are built fresh instead of kept. ``VerdictCache`` is the cheaper-keyed twin for
    a judge's common outcomes, where a small key (a score) determines the verdict."""

    __slots__ = ("judge", "version", "limit", "_made")

    def __init__(self, judge: str, version: str, limit: int = 2048) -> None:
        self.judge, self.version, self.limit = judge, version, limit
        self._made: dict[tuple[Any, ...], Verdict] = {}

    def get(self, status: str, scores: dict[str, float], confidence: float, passed: bool, reasons: list[str],
            tags: list[str]) -> Verdict:
        """The verdict ``new_verdict(judge, version, status, scores, confidence, passed, reasons, tags)``, shared.
        Scores are floats (as ``Verdict`` validates them), so equal keys serialise alike."""
        key = (status, *scores.items(), confidence, passed, *reasons, None, *tags)
        v = self._made.get(key)
        if v is not None:
            return v
        template = verdict_template(self.judge, self.version, confidence, passed, status)
        return _keep(self._made, self.limit, key, template, scores, reasons, tags)


def make_verdict(judge: str, version: str, scores: dict[str, float] | None = None, *, confidence: float = 1.0, passed: bool = True,
                 reasons: list[str] | None = None, tags: list[str] | None = None,
                 status: str = "ok") -> Verdict:
    """A ``Verdict`` built without pydantic validation, for fast judges' hot path (~2x cheaper than ``Verdict(...)``).

    Only for values the caller controls: scores already in [0, 1], a known status. The contract test suite checks
    that every fast judge's verdicts survive ``Verdict.model_validate`` unchanged.
    """
    return new_verdict(judge, version, status, scores or {}, confidence, passed, reasons or [], tags or [])


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
        cache = ctx.cache
        if "verdicts" in cache:
            cache["verdicts"].append(v)
        else:
            cache["verdicts"] = [v]
        return v

    def __repr__(self) -> str:
        return f"GuardedJudge({self.inner!r})"
