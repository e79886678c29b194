"""Replay's pure parts: window parsing and resolution, the content hash, rows back to judged traces, the diff
(flips, kappa, mean shift per slice), and train requests that name a replay."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from alignloop.report.replay import replay_section
from schemas.drift import TrainRequest
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict
from streams.encoding import to_row
from streams.replay.diff import cohen_kappa, curated_changes, diff_verdicts, flip_count
from streams.replay.rows import content_hash, judged_from_row
from streams.replay.window import PartitionProbe, WindowError, parse_time, parse_window, resolve
from trainers.runner import job_commands


def test_parse_offsets_and_times():
    assert parse_window("0:0-99,1:5-10", None).offsets == {0: (0, 99), 1: (5, 10)}
    assert parse_window("0:3,1:4", "0:9,1:8").offsets == {0: (3, 9), 1: (4, 8)}
    spec = parse_window("2026-12-01T00:00:00Z", "2026-12-01T01:00:00")  # naive = UTC
    assert spec.kind == "time" and spec.to_ms - spec.from_ms == 3_600_000
    assert parse_time("1700000000000") == 1_700_000_000_000


@pytest.mark.parametrize("frm,to,match", [
    ("0:5-2", None, "end >= start"), ("0:1", None, "no end offset"), ("0:1,0:2-3", None, "named twice"),
    ("0:1", "2026-01-01T00:00:00Z", "must be offsets too"), ("0:1,1:1", "0:5", "same partitions"),
    ("2026-01-02", "2026-01-01", "must be after"), ("last tuesday", None, "neither a time"),
    ("0:9", "0:3", "before --from"),
])
def test_bad_windows_say_what_to_fix(frm, to, match):
    with pytest.raises(WindowError, match=match):
        parse_window(frm, to)


def test_resolve_offsets_reports_gaps_and_refuses_the_impossible():
    probes = {0: PartitionProbe(10, 100, 5_000), 1: PartitionProbe(0, 50, 1_000)}
    got = resolve(parse_window("0:0-20,1:0-49", None), probes)
    assert [(w.start, w.end) for w in got] == [(10, 20), (0, 49)]
    assert "offsets 0-9 are gone" in got[0].gaps[0] and not got[1].gaps
    with pytest.raises(WindowError, match="offsets beyond the end: partition 1 holds offsets up to 49"):
        resolve(parse_window("1:0-50", None), probes)
    with pytest.raises(WindowError, match="partition 7 does not exist"):
        resolve(parse_window("7:0-1", None), probes)
    with pytest.raises(WindowError, match="older than the topic's retention"):
        resolve(parse_window("0:0-5", None), probes)


def test_resolve_times_uses_offsets_for_times_and_the_end_when_past_it():
    # from -> offset 40, to past the end (None) -> the high-water mark
    probes = {0: PartitionProbe(0, 100, 1_000, from_offset=40, to_offset=None),
              1: PartitionProbe(0, 30, 1_000, from_offset=None, to_offset=None)}
    got = resolve(parse_window("5000", "9000"), probes)
    assert [(w.start, w.end, w.empty) for w in got] == [(40, 99, False), (30, 29, True)]
    with pytest.raises(WindowError, match="holds no records"):
        resolve(parse_window("5000", "9000"), {1: probes[1]})
    # the broker dropped the first 20 offsets and holds records from t=8000 on: [5000, 7000) is gone
    gone = {0: PartitionProbe(20, 100, 8_000, from_offset=20, to_offset=20)}
    with pytest.raises(WindowError, match="older than the topic's retention"):
        resolve(parse_window("5000", "7000"), gone)
    part = resolve(parse_window("5000", "9000"), {0: PartitionProbe(20, 100, 8_000, from_offset=20, to_offset=60)})
    assert (part[0].start, part[0].end) == (20, 59) and "may be gone" in part[0].gaps[0]


def test_content_hash_is_order_free_and_ignores_filtered_records():
    rows = [{"topic": "t", "partition": p, "offset": o, "value_sha256": f"{p}{o}", "status": "landed"}
            for p in range(2) for o in range(3)]
    filtered = {"topic": "t", "partition": 0, "offset": 9, "value_sha256": "x", "status": "filtered"}
    assert content_hash(rows) == content_hash(list(reversed(rows)) + [filtered])
    changed = [dict(r, value_sha256="other") if r["offset"] == 1 else r for r in rows]
    assert content_hash(changed) != content_hash(rows)


def _judged(tid: str, agent: str, passed: bool, score: float, outcome: str = "pass") -> JudgedTrace:
    t = Trace(trace_id=tid, conversation_id=f"c-{tid}", agent_id=agent, user_message="hi", final_response="hello",
              timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc), metadata={"domain": "ops"},
              tool_calls=[{"name": "shell.run", "args": {"cmd": "ls"}}], candidates=["a", "b"])
    v = Verdict(judge="policy", passed=passed, scores={"policy.safety": score}, tags=["x"] if not passed else [])
    return JudgedTrace(trace=t, verdicts=[v], outcome=outcome, source=SourceRef(topic="t", partition=1, offset=7),
                       processed_at=datetime(2026, 12, 1, 1, tzinfo=timezone.utc))


def test_a_traces_row_turns_back_into_its_judged_trace():
    jt = _judged("a", "agent-x", False, 0.2, "fail")
    assert to_row(judged_from_row(to_row(jt))) == to_row(jt)


def test_cohen_kappa_matches_the_textbook_example():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5, kappa 0.4
    pairs = [(1, 1)] * 20 + [(1, 0)] * 5 + [(0, 1)] * 10 + [(0, 0)] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([(1, 1)] * 4) == 1.0 and cohen_kappa([]) is None


def test_diff_counts_flips_per_slice_with_examples_and_mean_shift():
    live = [to_row(_judged(f"t{i}", "agent-a" if i < 4 else "agent-b", True, 1.0)) for i in range(6)]
    new = [to_row(_judged(f"t{i}", "agent-a" if i < 4 else "agent-b", i not in (1, 2), 0.5 if i in (1, 2) else 1.0,
                          "fail" if i in (1, 2) else "pass")) for i in range(6)]
    new.append(to_row(_judged("only-new", "agent-a", True, 1.0)))
    d = diff_verdicts(live, new)
    assert d["matched"] == 6 and d["only_in_replay"] == 1
    pol = d["judges"]["policy"]
    assert pol["all"]["pass_to_fail"] == 2 and pol["all"]["examples"]["pass_to_fail"] == ["t1", "t2"]
    assert pol["agent=agent-a"]["pass_to_fail"] == 2 and pol["agent=agent-b"]["pass_to_fail"] == 0
    assert d["judges"]["outcome"]["all"]["pass_to_fail"] == 2 and flip_count(d, "policy") == 2
    assert pol["all"]["kappa"] == 0.0  # live said pass throughout: agreement no better than chance
    shift = {(r["dimension"], r["slice"]): r["mean_shift"] for r in d["dimensions"]}
    assert shift[("policy.safety", "all")] == pytest.approx(-1 / 6, abs=1e-4)
    assert shift[("policy.safety", "agent=agent-a")] == pytest.approx(-0.25)
    assert shift[("policy.safety", "domain=ops")] == pytest.approx(-1 / 6, abs=1e-4)
    assert curated_changes({"a", "b"}, {"b", "c"})["added_examples"] == ["c"]
    d.update(name="r1", curated={"sft_examples": curated_changes({"t1"}, set())})
    page = replay_section(d)
    assert "Replay r1 vs live" in page and "t1, t2" in page and "policy.safety" in page and "-0.25" in page


def test_a_train_request_naming_a_replay_reads_its_namespace():
    req = TrainRequest(kind="sft", replay="no-email")
    assert ["--set", 'data.replay="no-email"'] == job_commands(req, False)[0][-2:]
    assert req.dedup_key() != TrainRequest(kind="sft").dedup_key()
    assert json.loads(TrainRequest.model_validate_json(req.to_json()).to_json())["replay"] == "no-email"
