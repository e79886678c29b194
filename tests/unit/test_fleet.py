"""The simulated fleet: profiles, determinism, behaviour per arm that the fast judges see, stickiness over a ramp."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from alignloop.fleet import Fleet, parse_turns
from connectors.rollout_state import FlagBook, StickyAssignments, served_by_bucketing
from schemas.fleet import load_fleet_profile
from schemas.rollout import RolloutFlag
from schemas.settings import ConfigError
from schemas.trace import Trace
from streams.judges import load_policy, make_fast_judges
from streams.judges.base import run_judges

ROOT = Path(__file__).resolve().parents[2]


def flag(version: int, weight: int, stage: str = "canary") -> RolloutFlag:
    return RolloutFlag.model_validate({
        "agent_id": "bot", "rollout_id": "r1", "version": version, "stage": stage,
        "baseline": {"policy_id": "base-v1"},
        "candidate": {"policy_id": "cand-v2", "adapter_id": "a@2", "adapter_hash": "sha256:c2"},
        "weights": {"candidate": weight, "baseline": 100 - weight}})


def fixed(f: RolloutFlag):
    return lambda agent, conv: (*served_by_bucketing(f, conv), f)


def records(fleet: Fleet, served) -> list[dict]:
    return [json.loads(v) for _, v in fleet.run(served)]


def test_profiles_load_and_the_candidate_overrides_the_baseline() -> None:
    unsafe, slow, same = (load_fleet_profile(n) for n in ("unsafe", "slow", "same"))
    assert (unsafe.arm("baseline").violation_rate, unsafe.arm("candidate").violation_rate) == (0.01, 0.03)
    assert slow.arm("candidate").latency_median_ms == pytest.approx(1.3 * slow.arm("baseline").latency_median_ms)
    assert same.arm("candidate") == same.arm("baseline")
    assert load_fleet_profile(ROOT / "configs" / "fleet" / "better.yaml").arm("candidate").violation_rate == 0.0


def test_a_bad_profile_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("candidate:\n  violation_rat: 0.2\n")
    with pytest.raises(ConfigError, match="violation_rat") as exc:
        load_fleet_profile(bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="not found.*same"):
        load_fleet_profile("no-such-profile")
    with pytest.raises(ValueError, match="MIN-MAX"):
        parse_turns("6-2")
    assert parse_turns("3") == (3, 3)


def test_same_seed_same_traffic_and_conversations_are_multi_turn() -> None:
    f = flag(1, 50)

    def run(seed: int) -> list[dict]:
        out = records(Fleet(load_fleet_profile("same"), agents=["bot"], conversations=60, seed=seed), fixed(f))
        return [{k: v for k, v in r.items() if k != "timestamp"} for r in out]

    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c
    per_conv = Counter(r["conversation_id"] for r in a)
    assert len(per_conv) == 60 and set(per_conv.values()) <= set(range(2, 7)) and max(per_conv.values()) > 2
    # turns of one conversation are interleaved with other conversations' turns
    first = a[0]["conversation_id"]
    idx = [i for i, r in enumerate(a) if r["conversation_id"] == first]
    assert idx[-1] - idx[0] > len(idx)


def test_every_turn_is_stamped_with_its_arm() -> None:
    f = flag(3, 30)
    out = records(Fleet(load_fleet_profile("same"), agents=["bot"], conversations=200, seed=1), fixed(f))
    for r in out:
        arm = served_by_bucketing(f, r["conversation_id"])[0]
        assert r["metadata"]["rollout"] == {"rollout_id": "r1", "variant": arm, "flag_version": 3}
        assert (r["policy_id"], r["adapter_hash"]) == (("cand-v2", "sha256:c2") if arm == "candidate"
                                                       else ("base-v1", None))
    assert 0.2 < sum(r["policy_id"] == "cand-v2" for r in out) / len(out) < 0.4
    unflagged = records(Fleet(load_fleet_profile("same"), agents=["bot"], conversations=5), lambda a, c: None)
    assert {r["policy_id"] for r in unflagged} == {"base"} and "rollout" not in unflagged[0]["metadata"]


def test_the_fast_judges_see_the_profile_violations_per_arm() -> None:
    judges = make_fast_judges(load_policy(ROOT / "configs" / "policy.yaml"))
    fleet = Fleet(load_fleet_profile("unsafe"), agents=["bot"], conversations=500, seed=3)
    flagged: Counter[str] = Counter()
    for r in records(fleet, fixed(flag(1, 50))):
        verdicts = run_judges(judges, Trace.model_validate(r))
        if any(t.startswith("disallowed") for v in verdicts for t in v.tags):
            flagged[r["metadata"]["rollout"]["variant"]] += 1
    s = fleet.summary
    assert flagged == s.violations  # the policy judge flags exactly the turns that complied
    rate = {a: s.violations[a] / s.turns[a] for a in ("baseline", "candidate")}
    assert rate["baseline"] < 0.02 < rate["candidate"] < 0.045


def test_slow_candidate_is_thirty_percent_slower_on_the_same_turns() -> None:
    def latencies(profile: str) -> list[float]:
        out = records(Fleet(load_fleet_profile(profile), agents=["bot"], conversations=50, seed=2),
                      fixed(flag(1, 100, "promoted")))
        return [r["latency_ms"] for r in out]

    same, slow = latencies("same"), latencies("slow")
    assert len(same) == len(slow) and all(b == pytest.approx(1.3 * a, rel=1e-3) for a, b in zip(same, slow))


def test_a_ramp_never_moves_a_conversation_and_a_rollback_does() -> None:
    steps = [flag(v, w, "promoted" if w == 100 else "canary") for v, w in [(1, 5), (2, 25), (3, 50), (4, 100)]]
    rollback = flag(5, 0, "rolled_back")
    book, pins = FlagBook(), StickyAssignments()
    fleet = Fleet(load_fleet_profile("same"), agents=["bot"], conversations=400, seed=5, turns=(3, 6),
                  open_per_agent=100)
    total = fleet.total_turns_hint
    seen = [0]

    def served(agent: str, conv: str):
        seen[0] += 1
        i = min(len(steps) - 1, seen[0] * len(steps) // (total // 2))  # ramp over the first half of the run
        book.put(rollback if seen[0] > 3 * total // 4 else steps[i])
        f = book.flags["bot"]
        return (*pins.serve(f, conv), f)

    records(fleet, served)
    d = fleet.summary.as_dict()
    assert d["flag_versions_seen"] == [1, 2, 3, 4, 5]
    assert d["mid_conversation_switches"] == 0
    assert d["rollback_moves"] > 10  # conversations in flight at the rollback moved back, by design
    assert d["rollback_moves"] == pins.moves["rollback"] and set(pins.moves) == {"rollback"}
    # flagd's assignment alone (no pins) moves baseline conversations to the candidate as the weight grows
    bare = Fleet(load_fleet_profile("same"), agents=["bot"], conversations=400, seed=5, turns=(3, 6),
                 open_per_agent=100)
    seen[0] = 0
    book, pins = FlagBook(), StickyAssignments(capacity=0)  # forgets at once: every turn is a fresh assignment
    records(bare, served)
    assert bare.summary.as_dict()["mid_conversation_switches"] > 10
