"""Fast judges hand out one shared verdict for their common outcomes: it must be the very same object each time,
serialise exactly as a freshly built one, and refuse every change (a change would reach every trace)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from alignloop.simulate import Simulator
from schemas.trace import Trace
from schemas.verdict import Verdict
from streams.judges import load_judges_config, load_policy, make_fast_judges
from streams.judges.base import JudgeContext, VerdictCache, shared_verdict, verdict_template

ROOT = Path(__file__).resolve().parents[2]


def test_a_shared_verdict_refuses_changes_and_serialises_like_a_fresh_one() -> None:
    v = shared_verdict(verdict_template("j", "1", 0.9, True), {"safety": 1.0}, ["r"], ["t"])
    fresh = Verdict(judge="j", judge_version="1", scores={"safety": 1.0}, confidence=0.9, reasons=["r"], tags=["t"])
    assert v.model_dump_json() == fresh.model_dump_json() and v == fresh
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


def test_verdict_cache_shares_per_key_up_to_its_limit() -> None:
    cache = VerdictCache(verdict_template("q", "1", 0.7, True), limit=2)
    a = cache.get(0.5, {"helpfulness": 0.5})
    assert cache.get(0.5, {"helpfulness": 0.5}) is a and a.scores == {"helpfulness": 0.5}
    b = cache.get(0.6, {"helpfulness": 0.6})
    c1, c2 = cache.get(0.7, {"helpfulness": 0.7}), cache.get(0.7, {"helpfulness": 0.7})
    assert b is not a and c1 is not c2 and c1 == c2  # past the limit: fresh each time, same content
    c1.tags.append("own")  # a fresh verdict's lists are its own
    assert c2.tags == []


def test_fast_judges_hand_out_the_same_verdict_for_common_outcomes_and_it_never_changes() -> None:
    judges = make_fast_judges(load_policy(ROOT / "configs" / "policy.yaml"), load_judges_config(None))
    sim = Simulator(seed=4)
    seen: dict[str, dict[int, tuple[Verdict, str]]] = {}
    for i in range(400):
        rec, _ = sim.trace(i)
        trace = Trace.model_validate(rec)
        ctx = JudgeContext()
        for j in judges:
            v = j.judge(trace, ctx)
            first = seen.setdefault(j.name, {}).setdefault(id(v), (v, v.model_dump_json()))
            assert first[0] is v and first[1] == v.model_dump_json()  # a shared one never changed
    counts = {name: len(ids) for name, ids in seen.items()}
    # 400 traces: the clean-case judges reuse a handful of objects (not one per trace)
    assert all(counts[n] < 200 for n in ("policy", "refusal", "toxicity", "pii_leak")), counts
    assert json.loads(next(iter(seen["toxicity"].values()))[1])["judge"] == "toxicity"


def test_verdict_interner_shares_each_distinct_finding_up_to_its_limit() -> None:
    from streams.judges.base import SHARED, VerdictInterner, new_verdict

    vi = VerdictInterner("tool_outcome", "3", limit=2)
    a = vi.get("ok", {"tool_correctness": 0.5}, 0.8, False, ["1 of 2 calls failed"], ["tool_error:search"])
    fresh = new_verdict("tool_outcome", "3", "ok", {"tool_correctness": 0.5}, 0.8, False, ["1 of 2 calls failed"],
                        ["tool_error:search"])
    assert a.model_dump_json() == fresh.model_dump_json() and id(a) in SHARED
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
    assert others[1] is not vi.get("ok", {"tool_correctness": 0.5}, 0.8, True, ["1 of 2 calls failed"],
                                   ["tool_error:search"])  # past the limit of 2: built fresh, not kept
    assert id(others[1]) not in SHARED and len(vi._made) == 2


def test_fast_judges_share_their_findings_too() -> None:
    """Traces with findings (tool failures, risky requests, PII in the answer) get shared verdicts as well, so
    their verdict lists' summaries are kept; the verdicts equal what each judge's new_verdict call would build."""
    from streams.judges.base import SHARED

    judges = make_fast_judges(load_policy(ROOT / "configs" / "policy.yaml"), load_judges_config(None))
    sim = Simulator(seed=11)
    findings = 0
    by_content: dict[tuple[str, str], int] = {}
    for i in range(1500):
        trace = Trace.model_validate(sim.trace(i)[0])
        ctx = JudgeContext()
        for j in judges:
            v = j.judge(trace, ctx)
            assert id(v) in SHARED
            findings += bool(v.tags)
            if v.tags:  # one object per distinct finding
                key = (j.name, v.model_dump_json())
                assert by_content.setdefault(key, id(v)) == id(v)
    assert findings > 300
