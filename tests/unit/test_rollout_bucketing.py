"""Bucketing is flagd's `fractional` (core/pkg/evaluator/fractional.go): shared vectors, stickiness, ramps."""
from __future__ import annotations

import pytest

from schemas.rollout import RolloutFlag
from streams.rollout.bucketing import assign, bucketing_hash, distribution, fractional

COLORS = [("red", 25), ("blue", 25), ("green", 25), ("yellow", 25)]


def _flag(weight: int, agent: str = "support-bot") -> RolloutFlag:
    return RolloutFlag(agent_id=agent, rollout_id="r1", version=weight, stage="canary",
                       baseline={"policy_id": "base"},
                       candidate={"policy_id": "p1", "adapter_id": "a1", "adapter_hash": "sha256:1"},
                       weights={"candidate": weight, "baseline": 100 - weight})


def test_murmur3_reference_value() -> None:
    # MurmurHash3_x86_32("hello", seed 0) = 0x248bfa47 (smhasher reference).
    assert bucketing_hash("hello") == 0x248BFA47


@pytest.mark.parametrize(("bucketing_value", "expected"), [
    # Expected variants from flagd's own TestFractionalEvaluation (core v0.16.1), 4 x 25 split.
    ("headerColorrachel@faas.com", "blue"), ("headerColormonica@faas.com", "yellow"),
    ("headerColorjoey@faas.com", "red"), ("headerColorross@faas.com", "blue"),
    ("my-seedrachel@faas.com", "green"), ("my-seedmonica@faas.com", "red"),
    ("my-seedjoey@faas.com", "blue"), ("my-seedross@faas.com", "green"),
])
def test_flagd_shared_vectors(bucketing_value: str, expected: str) -> None:
    assert fractional(bucketing_value, COLORS) == expected


def test_integer_mapping_not_the_spec_page_percentages() -> None:
    # The evaluator maps (h * total) >> 32; the spec page's abs(int32(h))/MaxInt32*100 would differ. A hash
    # >= 2**31 (negative as int32) separates the two: find one and check we follow the evaluator.
    key = next(f"k{i}" for i in range(1000) if bucketing_hash(f"k{i}") >= 3 * 2**30)
    h = bucketing_hash(key)
    assert fractional(key, [("a", 50), ("b", 50)]) == "b"  # evaluator: bucket (h*100)>>32 >= 75
    as_int32 = h - 2**32
    assert int(abs(as_int32) / (2**31 - 1) * 100) < 50  # the spec page's mapping would say "a"


def test_zero_and_negative_weights_like_flagd() -> None:
    assert fractional("x", [("a", 0), ("b", 0)]) is None
    assert fractional("x", [("a", -5), ("b", 10)]) == "b"
    assert all(fractional(f"k{i}", [("a", 0), ("b", 3)]) == "b" for i in range(200))


def test_weights_split_traffic_in_proportion() -> None:
    ids = [f"conv-{i}" for i in range(10_000)]
    share = sum(assign(_flag(25), c) == "candidate" for c in ids) / len(ids)
    assert 0.23 < share < 0.27
    assert all(assign(_flag(0), c) == "baseline" for c in ids[:2000])
    assert all(assign(_flag(100), c) == "candidate" for c in ids[:2000])


def test_sticky_and_empty_key_gets_baseline() -> None:
    flag = _flag(50)
    assert [assign(flag, "abc") for _ in range(5)] == [assign(flag, "abc")] * 5
    assert assign(flag, "") == "baseline"


def test_ramps_never_move_a_conversation_back_to_baseline() -> None:
    ids = [f"conv-{i:05d}" for i in range(10_000)]
    ramps = [1, 5, 25, 50, 100]
    on = {w: {c for c in ids if assign(_flag(w), c) == "candidate"} for w in ramps}
    moved_back = sum(len(on[a] - on[b]) for a, b in zip(ramps, ramps[1:]))
    assert moved_back == 0
    assert [len(on[w]) for w in ramps] == sorted(len(on[w]) for w in ramps)
    assert len(on[100]) == 10_000 and 0 < len(on[1]) < 300


def test_flag_distribution_puts_the_candidate_first() -> None:
    assert distribution(_flag(5)) == [("candidate", 5), ("baseline", 95)]
    idle = RolloutFlag(agent_id="a", rollout_id="r0", version=1, stage="stable", baseline={"policy_id": "base"},
                       weights={"baseline": 100})
    assert distribution(idle) == [("candidate", 0), ("baseline", 100)]
    assert assign(idle, "conv-1") == "baseline"
