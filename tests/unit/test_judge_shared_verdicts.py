"""Fast judges hand out one shared verdict for their common outcomes and recurring findings: the very same object
each time, serialised exactly as a freshly built one, refusing every change (a change would reach every trace)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from alignloop.simulate import Simulator
from schemas.trace import Trace
from schemas.verdict import Verdict
from streams.judges import load_judges_config, load_policy, make_fast_judges, run_judges
from streams.judges.base import (JudgeContext, VerdictInterner, is_shared, make_verdict,
                                 shared_verdict, verdict_template)

ROOT = Path(__file__).resolve().parents[2]


def test_a_shared_verdict_refuses_changes_and_serialises_like_a_fresh_one() -> None:
    v = shared_verdict(verdict_template("j", "1", 0.9, True), {"safety": 1.0}, ["r"], ["t"])
    fresh = Verdict(judge="j", judge_version="1", scores={"safety": 1.0}, confidence=0.9, reasons=["r"], tags=["t"])
    assert v.model_dump_json() == fresh.model_dump_json() and v == fresh and is_shared(v) and not is_shared(fresh)
    for change in (lambda: v.tags.append("x"), lambda: v.reasons.extend(["x"]), lambda: v.tags.__setitem__(0, "x"),
                   lambda: v.scores.__setitem__("safety", 0.0), lambda: v.scores.update(safety=0.0),
                   lambda: v.scores.pop("safety")):
        with pytest.raises(TypeError, match="read-only"):
            change()
    with pytest.raises(ValidationError):
        v.passed = False  # Verdict is frozen
    changed = v.model_copy(update={"tags": [*v.tags, "x"]})
    assert changed.tags == ["t", "x"] and v.tags == ["t"] and v.scores == {"safety": 1.0}
    assert Verdict.model_validate_json(v.model_dump_json()) == v
    empty = shared_verdict(verdict_template("j", "1", 1.0, True, "skipped"), {})
    assert is_shared(empty) and empty.model_dump() == Verdict(judge="j", status="skipped").model_dump()


def test_verdict_interner_shares_each_distinct_finding_up_to_its_limit() -> None:
    vi = VerdictInterner("tool_outcome", "3", limit=2)
    a = vi.get("ok", {"tool_correctness": 0.5}, 0.8, False, ["1 of 2 calls failed"], ["tool_error:search"])
    fresh = make_verdict("tool_outcome", "3", {"tool_correctness": 0.5}, confidence=0.8, passed=False,
                         reasons=["1 of 2 calls failed"], tags=["tool_error:search"])
    assert a.model_dump_json() == fresh.model_dump_json() and is_shared(a)
    assert vi.get("ok", {"tool_correctness": 0.5}, 0.8, False, ["1 of 2 calls failed"], ["tool_error:search"]) is a
    with pytest.raises(TypeError, match="read-only"):
        a.tags.append("x")
    # every field is part of the key: a change anywhere is another verdict
    others = [vi.get("ok", {"tool_correctness": 0.5}, 0.8, False, ["1 of 2 calls failed"], ["tool_error:fetch"]),
              vi.get("ok", {"tool_correctness": 0.5}, 0.8, True, ["1 of 2 calls failed"], ["tool_error:search"]),
              vi.get("ok", {"tool_correctness": 0.5}, 0.8, False, [], ["1 of 2 calls failed", "tool_error:search"])]
    assert [o.tags for o in others] == [["tool_error:fetch"], ["tool_error:search"],
                                        ["1 of 2 calls failed", "tool_error:search"]]
    assert others[1].passed and others[2].reasons == [] and len({id(o) for o in [a, *others]}) == 4
    again = vi.get("ok", {"tool_correctness": 0.5}, 0.8, True, ["1 of 2 calls failed"], ["tool_error:search"])
    assert again is not others[1] and again == others[1]  # past the limit of 2: built fresh, not kept
    assert is_shared(others[0]) and not is_shared(others[1]) and not is_shared(again)
    again.tags.append("own")  # a fresh verdict's lists are its own
    assert others[1].tags == ["tool_error:search"]


def test_fast_judges_share_common_outcomes_and_findings_and_they_never_change() -> None:
    """Over simulator traces every fast verdict is a shared one; one object per distinct content, whose JSON
    never changes from trace to trace, and each equals a validated copy of itself."""
    judges = make_fast_judges(load_policy(ROOT / "configs" / "policy.yaml"), load_judges_config(None))
    sim = Simulator(seed=11)
    seen: dict[int, tuple[Verdict, str]] = {}
    by_content: dict[str, set[int]] = {}
    findings = 0
    for i in range(1500):
        for v in run_judges(judges, Trace.model_validate(sim.trace(i)[0]), JudgeContext()):
            assert is_shared(v), v
            first = seen.setdefault(id(v), (v, v.model_dump_json()))
            assert first[0] is v and first[1] == v.model_dump_json()  # a shared one never changed
            by_content.setdefault(first[1], set()).add(id(v))
            findings += bool(v.tags)
    assert findings > 300 and len(seen) < 600
    # a judge's fixed outcome and its interned twin may both exist; never one object per trace
    assert max(map(len, by_content.values())) <= 2
    toxicity = [json.loads(s) for _, s in seen.values() if json.loads(s)["judge"] == "toxicity"]
    assert toxicity and all(Verdict.model_validate(t).model_dump() == t for t in toxicity)
