"""LearningJudge: learns labels online, predicts with uncertainty, tracks kappa; deterministic hashing."""
from __future__ import annotations

import random

from schemas.trace import ToolCall, Trace
from schemas.verdict import Verdict
from streams.judges.base import JudgeContext
from streams.judges.learning import LearningJudge

GOOD = ["Done: the report is attached and the meeting is booked.", "Scaled the deployment to 6 replicas.",
        "Here is the summary of the three papers you asked for."]
BAD = ["The test failed because of a typo; fixed and committed.", "All set, committed the fix to main."]


def make(i: int, rng: random.Random) -> tuple[Trace, bool]:
    bad = rng.random() < 0.3
    calls = [ToolCall(name="git.commit", args={"m": "x"}, error="HTTP 500")] if bad else [
        ToolCall(name="git.commit", args={"m": "x"}, result={"ok": True})]
    t = Trace(trace_id=f"t{i}", conversation_id="c", user_message="Fix the failing test and commit it.",
              final_response=rng.choice(BAD if bad else GOOD), tool_calls=calls)
    return t, bad


def test_cold_start_is_skipped_then_it_learns_and_agrees() -> None:
    rng = random.Random(0)
    lj = LearningJudge(min_labels=20, seed=3)
    t0, _ = make(0, rng)
    cold = lj.judge(t0, JudgeContext())
    assert cold.status == "skipped" and cold.confidence == 0.0
    for i in range(1, 400):
        t, bad = make(i, rng)
        lj.judge(t, JudgeContext())
        assert lj.learn(t.trace_id, passed=not bad)
    stats = lj.stats()
    assert stats["labels"] == 399 and stats["kappa"] > 0.8 and stats["rolling_kappa"] > 0.9
    t, bad = make(1000, random.Random(5))
    v = lj.judge(t, JudgeContext())
    assert v.status == "ok" and v.passed is (not bad) and v.confidence > 0.5
    assert 0.0 <= v.scores["task_success"] <= 1.0


def test_uses_fast_verdicts_as_features_and_unknown_traces_are_not_learned() -> None:
    lj = LearningJudge(seed=1)
    t = Trace(trace_id="x", conversation_id="c", user_message="hi", final_response="hello")
    plain = lj.features(t, JudgeContext(), [])
    tagged = lj.features(t, JudgeContext(), [Verdict(judge="quality", passed=False, tags=["quality:too_short"],
                                                     scores={"helpfulness": 0.2})])
    assert set(plain) < set(tagged)
    assert lj.features(t, JudgeContext(), []) == plain  # crc32 hashing: stable across calls and processes
    assert lj.learn("never-seen", passed=True) is False and lj.n_labels == 0


def test_feature_cache_is_bounded() -> None:
    lj = LearningJudge(feature_cache=5)
    for i in range(20):
        lj.judge(Trace(trace_id=f"t{i}", conversation_id="c", user_message="a", final_response="b"), JudgeContext())
    assert lj.learn("t0", passed=True) is False and lj.learn("t19", passed=True) is True


def test_features_of_long_texts_are_the_same_in_every_process() -> None:
    """More distinct words than max_words: the kept ones must not depend on the process's string hash seed
    (a restarted or second monitor would otherwise see different features for the same trace)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from schemas.trace import Trace\n"
        "from streams.judges.base import JudgeContext\n"
        "from streams.judges.learning import LearningJudge\n"
        "words = ' '.join(f'word{i}' for i in range(300))\n"
        "t = Trace(trace_id='t', conversation_id='c', user_message=words, final_response=words[::-1])\n"
        "print(sorted(LearningJudge(max_words=16).features(t, JudgeContext(), []).items()))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    outs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=repo,
                           env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(repo)}).stdout
            for seed in (1, 2, 3)}
    assert len(outs) == 1
