"""RolloutClient without a broker: the version rule, every kind of bad record, the disk cache, variant and stamp."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.rollout_client import FlagBook, RolloutClient, StickyAssignments, _write_cache
from schemas.bucketing import assign
from schemas.rollout import RolloutFlag
from schemas.settings import Settings
from schemas.trace import Trace

ROOT = Path(__file__).resolve().parents[2]


def rec(version: int, weight: int = 25, agent: str = "bot", **over) -> dict:
    d = {"agent_id": agent, "rollout_id": "r1", "version": version, "stage": "canary",
         "baseline": {"policy_id": "base"},
         "candidate": {"policy_id": "p-new", "adapter_id": "a@1", "adapter_hash": "sha256:abc"},
         "weights": {"candidate": weight, "baseline": 100 - weight}, "updated_at": "2026-12-01T00:00:00Z"}
    d.update(over)
    return d


def raw(d: dict) -> bytes:
    return json.dumps(d).encode()


BAD = [
    (b"{not json", "invalid", "not_json"),
    (b"\xff\xfe\x00", "invalid", "not_json"),
    (b"[1, 2]", "invalid", "not_an_object"),
    (raw(rec(9, weights={"candidate": 30, "baseline": 60})), "invalid", "weights"),
    (raw(rec(9, schema_version=7)), "invalid", "future_schema_version"),
    (raw({**rec(9), "surprise": 1}), "invalid", "invalid"),
    (raw(rec(9, candidate={"policy_id": "p", "adapter_id": "a@2"})), "invalid", "invalid"),  # hash missing
    (raw(rec(1, weight=99)), "ignored", "version_not_higher"),                             # backwards
    (raw(rec(2, weight=99)), "ignored", "version_not_higher"),                             # same version, other
    (None, "ignored", "tombstone"),
]


@pytest.mark.parametrize("value,kind,reason", BAD)
def test_a_bad_record_is_counted_and_the_last_good_flag_stays(value, kind, reason) -> None:
    book = FlagBook()
    good = book.offer(b"bot", raw(rec(2, weight=25)))
    assert good is not None and good.version == 2
    assert book.offer(b"bot", value) is None
    assert book.flags["bot"] == good
    assert book.stats()[kind] == {reason: 1} and book.applied == 1
    assert reason in book.last_reason and "kept the last good flag" in book.last_reason


def test_versions_only_go_up_and_a_replay_is_quiet() -> None:
    book = FlagBook()
    for v, w in [(1, 5), (3, 25), (2, 50), (3, 25), (4, 50)]:
        book.offer(b"bot", raw(rec(v, weight=w)))
    assert book.flags["bot"].version == 4 and book.flags["bot"].candidate_weight == 50
    assert book.applied == 3 and book.ignored == {"version_not_higher": 1, "replay": 1}


def test_a_key_naming_another_agent_is_invalid() -> None:
    book = FlagBook()
    assert book.offer(b"other-bot", raw(rec(1))) is None
    assert book.invalid == {"key_mismatch": 1} and book.flags == {}
    assert book.offer(None, raw(rec(1))) is not None  # no key: the value names the agent


def _client(tmp_path: Path, **kw) -> RolloutClient:
    # port 9 (discard): nothing answers, so a started follower only retries in the background
    return RolloutClient(Settings(home=tmp_path / "home", topic_prefix="u.", kafka_bootstrap="127.0.0.1:9"), **kw)


def test_variant_matches_the_bucketing_and_none_without_a_flag(tmp_path: Path) -> None:
    c = _client(tmp_path)
    assert c.variant("bot", "c1") is None and c.flag("bot") is None
    c.book.offer(b"bot", raw(rec(1, weight=40)))
    flag = c.flag("bot")
    names = [c.variant("bot", f"c{i}")[0] for i in range(2000)]
    assert names == [assign(flag, f"c{i}") for i in range(2000)]
    assert 700 < names.count("candidate") < 900  # 40% of 2,000
    name, arm = c.variant("bot", next(f"c{i}" for i, n in enumerate(names) if n == "candidate"))
    assert arm.adapter_hash == "sha256:abc" and arm.policy_id == "p-new"


def test_stamp_fills_policy_and_adapter_hash_for_dicts_and_traces(tmp_path: Path) -> None:
    c = _client(tmp_path)
    d = {"trace_id": "t", "conversation_id": "c", "user_message": "u", "final_response": "r",
         "metadata": {"channel": "web"}}
    assert c.stamp(d, "bot", "c") is d  # no flag: unchanged
    c.book.offer(b"bot", raw(rec(3, weight=100, stage="promoted")))
    out = c.stamp(d, "bot", "c")
    assert out["policy_id"] == "p-new" and out["adapter_hash"] == "sha256:abc"
    assert out["metadata"] == {"channel": "web", "rollout": {"rollout_id": "r1", "variant": "candidate",
                                                             "flag_version": 3}}
    assert "policy_id" not in d  # a copy
    t = c.stamp(Trace.model_validate(d), "bot", "c")
    assert isinstance(t, Trace) and (t.policy_id, t.adapter_hash) == ("p-new", "sha256:abc")
    Trace.model_validate(out)  # still a valid trace
    c.book.offer(b"bot", raw(rec(4, weight=0, stage="rolled_back")))
    assert c.stamp(d, "bot", "c")["policy_id"] == "base" and c.stamp(d, "bot", "c")["adapter_hash"] is None


def test_cache_is_loaded_at_start_and_counts_as_held(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "flags.json"
    _write_cache(cache, {"bot": RolloutFlag.model_validate(rec(5, weight=50))})
    assert [p.name for p in cache.parent.iterdir()] == ["flags.json"]  # no temp file left behind
    c = _client(tmp_path, cache_path=cache).start()
    try:
        assert c.ready and c.cache_loaded and not c.caught_up
        assert c.flag("bot").version == 5
        assert c.book.offer(b"bot", raw(rec(4, weight=5))) is None  # older than the cached one
    finally:
        c.stop()


def test_an_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "flags.json"
    cache.write_text("{torn")
    c = _client(tmp_path, cache_path=cache).start()
    try:
        assert not c.ready and c.flags() == {}
    finally:
        c.stop()


def test_pins_keep_every_conversation_through_a_ramp_and_a_rollback_moves_them() -> None:
    pins = StickyAssignments()
    ids = [f"conv-{i}" for i in range(5000)]
    ramp = [RolloutFlag.model_validate(rec(v, weight=w)) for v, w in [(1, 5), (2, 25), (3, 50), (4, 100)]]
    first = {c: pins.serve(ramp[0], c)[0] for c in ids}
    assert first == {c: assign(ramp[0], c) for c in ids}  # a new conversation gets flagd's assignment
    for f in ramp[1:]:
        assert {c: pins.serve(f, c)[0] for c in ids} == first  # in flight: nobody moves, weight 100 included
    assert pins.serve(ramp[-1], "new-conv")[0] == "candidate" and pins.moves == {}
    on_candidate = sum(v == "candidate" for v in first.values())
    back = RolloutFlag.model_validate(rec(5, weight=0, stage="rolled_back"))
    assert {pins.serve(back, c)[0] for c in ids} == {"baseline"}
    assert pins.moves == {"rollback": on_candidate} and 150 < on_candidate < 350  # 5% of 5,000
    other = RolloutFlag.model_validate(rec(6, weight=50, baseline={"policy_id": "base-2"}, rollout_id="r2"))
    pins.serve(other, ids[0])
    assert pins.moves["variant_gone"] == 1


def test_pins_are_bounded_and_end_forgets(tmp_path: Path) -> None:
    pins = StickyAssignments(capacity=100)
    f = RolloutFlag.model_validate(rec(1, weight=50))
    for i in range(250):
        pins.serve(f, f"c{i}")
    assert len(pins) == 100
    pins.end("bot", "c249")
    assert len(pins) == 99
    c = _client(tmp_path)
    c.book.offer(b"bot", raw(rec(1, weight=5)))
    name = c.variant("bot", "x")[0]
    c.book.offer(b"bot", raw(rec(2, weight=100)))
    assert c.variant("bot", "x")[0] == name and c.stats["pinned"] == 1
    c.end_conversation("bot", "x")
    assert c.variant("bot", "x")[0] == "candidate"


def test_the_oversight_sdk_hands_out_one_started_client(tmp_path: Path) -> None:
    from streams.sdk import OversightSDK

    with pytest.raises(ValueError, match="from_settings"):
        OversightSDK.from_paths(ROOT / "configs" / "policy.yaml").rollout()
    s = Settings(home=tmp_path / "home", topic_prefix="u.", kafka_bootstrap="127.0.0.1:9",
                 policy_path=ROOT / "configs" / "policy.yaml")
    _write_cache(RolloutClient(s).cache_path, {"bot": RolloutFlag.model_validate(rec(2, weight=100))})
    sdk = OversightSDK.from_settings(s)
    try:
        client = sdk.rollout()
        assert client is sdk.rollout() and client.ready  # from the default cache under settings.home
        assert client.stamp({"policy_id": "base"}, "bot", "c")["adapter_hash"] == "sha256:abc"
    finally:
        sdk.rollout().stop()
