"""RolloutFlag validation and folding flag records: bad records are clear errors, versions never go back."""
from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.rollout import RolloutFlag
from streams.rollout.flags import FlagError, apply, latest_by_agent, parse_flag


def record(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "agent_id": "support-bot", "rollout_id": "r1", "version": 1, "stage": "canary",
        "baseline": {"policy_id": "base"},
        "candidate": {"policy_id": "p1", "adapter_id": "a1", "adapter_hash": "sha256:1"},
        "weights": {"candidate": 5, "baseline": 95}, "updated_at": "2026-12-01T00:00:00Z"}
    rec.update(over)
    return rec


def test_valid_record_round_trips_through_json() -> None:
    flag = parse_flag(record())
    assert flag.candidate_weight == 5 and flag.flag_key == "support-bot"
    assert parse_flag(flag.model_dump_json()) == flag


@pytest.mark.parametrize(("over", "reason"), [
    ({"weights": {"candidate": 5, "baseline": 90}}, "sum to 100"),
    ({"weights": {"candidate": -5, "baseline": 105}}, "non-negative"),
    ({"weights": {"canary": 5, "baseline": 95}}, "weights.canary"),
    ({"candidate": None, "stage": "stable"}, "candidate weight needs a candidate variant"),
    ({"candidate": None, "weights": {"baseline": 100}}, "stage 'canary' needs a candidate"),
    ({"rollout_id": None}, "candidate variant needs a rollout_id"),
    ({"version": -1}, "version"),
    ({"schema_version": 2}, "schema_version"),
    ({"candidate": {"policy_id": "p1", "adapter_id": "a1"}}, "adapter_id and adapter_hash go together"),
    ({"extra": 1}, "extra"),
])
def test_bad_records_are_one_line_errors(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(FlagError, match="invalid RolloutFlag") as err:
        parse_flag(record(**over))
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_not_json_is_a_flag_error() -> None:
    with pytest.raises(FlagError):
        parse_flag("{not json")


def test_latest_version_wins_and_replays_are_idempotent() -> None:
    v1, v2 = parse_flag(record()), parse_flag(record(version=2, weights={"candidate": 25, "baseline": 75}))
    other = parse_flag(record(agent_id="billing-bot"))
    current = latest_by_agent([v1, other, v2])
    assert current["support-bot"] == v2 and current["billing-bot"] == other
    assert apply(current, v2) is False and current["support-bot"] == v2


def test_version_going_backwards_is_refused_and_keeps_the_last_good_flag() -> None:
    v1, v2 = parse_flag(record()), parse_flag(record(version=2, weights={"candidate": 25, "baseline": 75}))
    current = latest_by_agent([v2])
    with pytest.raises(FlagError, match="older than 2"):
        apply(current, v1)
    assert current["support-bot"] == v2
    with pytest.raises(FlagError, match="two different flags with version 2"):
        apply(current, parse_flag(record(version=2)))


def test_json_schema_exports() -> None:
    schema = RolloutFlag.model_json_schema()
    assert {"agent_id", "version", "baseline"} <= set(schema["required"])
    assert {"rollout_id", "stage", "candidate", "weights", "schema_version"} <= set(schema["properties"])
    json.dumps(schema)


def test_fold_records_skips_bad_ones_and_keeps_the_last_good_flag() -> None:
    from streams.rollout.flags import fold_records

    v2 = json.dumps(record(version=2, weights={"candidate": 25, "baseline": 75}))
    values = [json.dumps(record()), b"{not json", v2, json.dumps(record(weights={"candidate": 1, "baseline": 1})),
              json.dumps(record(version=1)), None, json.dumps(record(agent_id="billing-bot"))]
    current, skipped = fold_records(values)
    assert current["support-bot"].version == 2 and current["support-bot"].candidate_weight == 25
    assert set(current) == {"support-bot", "billing-bot"}
    assert [s.split(":")[0] for s in skipped] == ["record 1", "record 3", "record 4", "record 5"]
    assert "older than 2" in skipped[2] and "tombstone" in skipped[3]
