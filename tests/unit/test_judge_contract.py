"""One contract suite over every registered judge (river-style generic checks).

A new judge added to ``streams.judges.FAST_JUDGES`` (or ``EXTRA_JUDGES`` below) is tested without new test code:
it returns a valid Verdict, scores are known dimensions in [0, 1], it is deterministic, it survives empty, huge and
odd traces, and an internal failure becomes ``status="error"`` through the guard.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from schemas.trace import ContextItem, ToolCall, Trace
from schemas.verdict import DIMENSIONS, PiiFinding, Verdict
from streams.judges import FAST_JUDGES, JudgesConfig, load_policy, run_judges
from streams.judges.base import Judge, JudgeContext
from streams.judges.policy import compile_behaviours

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "configs" / "policy.yaml")
BEHAVIOURS = compile_behaviours(POLICY)


def _learning() -> Judge:
    from streams.judges.learning import LearningJudge

    return LearningJudge(seed=1)


FACTORIES: dict[str, Callable[[], Judge]] = {
    **{name: (lambda f=f: f(POLICY, JudgesConfig(), BEHAVIOURS)) for name, f in FAST_JUDGES.items()},
    "learning": _learning,
}


def _t(**kw) -> Trace:
    base = dict(trace_id="t", conversation_id="c", user_message="hi", final_response="hello")
    base.update(kw)
    return Trace(**base)


ODD_TRACES: dict[str, Trace] = {
    "empty": _t(user_message="", final_response=""),
    "whitespace": _t(user_message=" \n\t ", final_response="   "),
    "huge": _t(user_message="please " * 20_000, final_response=("lorem ipsum dolor " * 30_000),
               context=[ContextItem(content="x" * 200_000)]),
    "unicode": _t(user_message="¿Puedes ayudarme? 你好 🙂 \u0000 \u202e", final_response="Sí — ✓ 你好 \ud7ff"),
    "punctuation_only": _t(user_message="?!?!...", final_response="!!!,,,;;;"),
    "odd_tools": _t(tool_calls=[ToolCall(name="x", args={"cmd": None, "to": {"nested": [1, {"a": None}]},
                                                         "replicas": [1, 2], "path": 7}, result=None, status="error"),
                                ToolCall(name="shell.run", args={"cmd": ["rm", "-rf", "/"]}, result=[]),
                                ToolCall(name="graph.", args={}, result=0)] * 5),
    "odd_metadata": _t(metadata={"graph_ops": [None, 3, {"op": None}, "query"], "x": {"y": [1]}}),
    "candidates": _t(candidates=["a", "", "b" * 10_000]),
    "risky": _t(user_message="Write ransomware that encrypts every file and demands bitcoin",
                final_response="I can't help with that."),
}
ODD_PII = [PiiFinding(kind="EMAIL", field="final_response", count=2), PiiFinding(kind="WEIRD", field="??", count=1),
           PiiFinding(kind="CREDIT_CARD", field="candidates", count=1)]


@pytest.fixture(params=sorted(FACTORIES), ids=sorted(FACTORIES))
def judge(request: pytest.FixtureRequest) -> Judge:
    return FACTORIES[request.param]()


def _check(v: Verdict, j: Judge) -> None:
    assert isinstance(v, Verdict)
    assert Verdict.model_validate(v.model_dump()) == v  # fast-constructed verdicts are valid verdicts
    assert v.judge == j.name and v.judge_version == j.version
    assert v.status in ("ok", "skipped"), v.error
    assert set(v.scores) <= set(DIMENSIONS)
    assert all(0.0 <= s <= 1.0 for s in v.scores.values())
    assert 0.0 <= v.confidence <= 1.0
    assert all(isinstance(t, str) and t for t in v.tags)


def test_identity(judge: Judge) -> None:
    assert isinstance(judge.name, str) and judge.name and isinstance(judge.version, str) and judge.version


@pytest.mark.parametrize("case", sorted(ODD_TRACES))
def test_valid_verdict_on_odd_traces(judge: Judge, case: str) -> None:
    t = ODD_TRACES[case]
    _check(judge.judge(t, JudgeContext()), judge)
    _check(judge.judge(t, JudgeContext(pii=ODD_PII)), judge)


def test_deterministic_and_context_reuse_safe(judge: Judge) -> None:
    a, b = ODD_TRACES["risky"], ODD_TRACES["candidates"]
    first = judge.judge(a, JudgeContext())
    assert judge.judge(a, JudgeContext()) == first
    shared = JudgeContext()
    judge.judge(b, shared)
    assert judge.judge(a, shared) == first  # a context reused for another trace must not leak cached text


def test_internal_failure_is_an_error_verdict(judge: Judge, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("internal failure")

    monkeypatch.setattr(judge, "judge", boom)
    v, = run_judges([judge], ODD_TRACES["empty"], JudgeContext())
    assert v.status == "error" and v.judge == judge.name and "internal failure" in (v.error or "")
