"""Operator actions on a real broker and lake: gate check, start, pause, resume, promote, rollback; each one a
flag version, a `rollouts` row and an audit entry; a promotion marks the adapter in the registry."""
from __future__ import annotations

import asyncio

import pytest

from typer.testing import CliRunner

from alignloop import rollout_ops as ops
from alignloop.cli import app
from alignloop.errors import UserError
from alignloop.rollout_store import current_flags, read_decisions, read_rollouts
from connectors.audit import read_entries, verify
from tests.rollout_helpers import make_adapter, write_config
from trainers.registry import show_adapter

pytestmark = pytest.mark.integration


def test_operator_actions_write_flag_row_and_audit_entry(kafka_settings, tmp_path, monkeypatch) -> None:
    s = kafka_settings.model_copy(update={"rollout_config": write_config(tmp_path / "rollout.yaml")})
    good = make_adapter(s, tmp_path, "sft-good")
    failed = make_adapter(s, tmp_path, "sft-bad", passed=False)
    never = make_adapter(s, tmp_path, "sft-new", passed=None)

    with pytest.raises(UserError, match=r"sft-bad@1 cannot be rolled out: status gate_failed, its eval gate "
                                        r"failed \(win rate 0.41 < 0.5\)"):
        ops.start(s, "bot", failed, actor="alice")
    with pytest.raises(UserError, match="never gated"):
        ops.start(s, "bot", never, actor="alice")
    with pytest.raises(UserError, match="no adapter 'nope'"):
        ops.start(s, "bot", "nope", actor="alice")
    with pytest.raises(UserError, match="steps must increase"):
        ops.start(s, "bot", good, actor="alice", steps=[50, 25, 100])
    with pytest.raises(UserError, match="no rollout to pause"):
        ops.pause(s, "bot", actor="alice")

    flag = ops.start(s, "bot", good, actor="alice", steps=[10, 50, 100], min_conversations=30)
    assert (flag.version, flag.stage, flag.weights) == (1, "canary", {"candidate": 10, "baseline": 90})
    assert flag.baseline.policy_id == "base" and flag.candidate.adapter_id == good
    assert flag.candidate.adapter_hash.startswith("sha256:") and len(flag.candidate.adapter_hash) == 71
    with pytest.raises(UserError, match="already has rollout"):
        ops.start(s, "bot", good, actor="alice")
    assert ops.pause(s, "bot", actor="bob").stage == "paused"
    with pytest.raises(UserError, match="it is paused"):
        ops.pause(s, "bot", actor="bob")
    assert ops.resume(s, "bot", actor="bob").stage == "canary"
    with pytest.raises(UserError, match="needs a reason"):
        ops.rollback(s, "bot", actor="bob", reason=" ")
    promoted = ops.promote(s, "bot", actor="carol")
    assert (promoted.version, promoted.stage, promoted.weights) == (4, "promoted", {"candidate": 100, "baseline": 0})
    assert promoted.baseline.policy_id == "base"          # kept for an instant rollback
    assert show_adapter(s, good)["status"] == "promoted"
    back = ops.rollback(s, "bot", actor="carol", reason="complaints")
    assert (back.version, back.stage, back.candidate_weight) == (5, "rolled_back", 0)

    flags, _ = asyncio.run(current_flags(s))
    assert flags["bot"] == back
    decisions = [d for d, _ in asyncio.run(read_decisions(s))]
    assert [(d.action, d.flag_version, d.actor) for d in decisions] == [
        ("start", 1, "alice"), ("pause", 2, "bob"), ("resume", 3, "bob"), ("promote", 4, "carol"),
        ("rollback", 5, "carol")]
    start = decisions[0]
    assert start.config["canary"]["steps"] == [10, 50, 100] and start.config["canary"]["min_conversations"] == 30
    assert set(start.start_offsets) == {s.topic("traces.judged"), s.topic("feedback.labels")}
    rows = read_rollouts(s, flag.rollout_id)
    assert [(r["action"], r["flag_version"], r["weight_after"]) for r in rows] == [
        ("start", 1, 10), ("pause", 2, 10), ("resume", 3, 10), ("promote", 4, 100), ("rollback", 5, 0)]
    assert {r["adapter_hash"] for r in rows} == {flag.candidate.adapter_hash}
    entries = [e for e, _ in asyncio.run(read_entries(s)) if e.action.startswith("rollout.")]
    assert [(e.action, e.actor, e.details["flag_version"]) for e in entries] == [
        ("rollout.start", "alice", 1), ("rollout.pause", "bob", 2), ("rollout.resume", "bob", 3),
        ("rollout.promote", "carol", 4), ("rollout.rollback", "carol", 5)]
    assert asyncio.run(verify(s)).ok

    st = ops.status(s, "bot")
    assert st["stage"] == "rolled_back" and [d["action"] for d in st["decisions"]][-1] == "rollback"
    for name, value in (("KAFKA_BOOTSTRAP", s.kafka_bootstrap), ("TOPIC_PREFIX", s.topic_prefix),
                        ("LAKE_ROOT", s.lake_root), ("ROLLOUT_CONFIG", str(s.rollout_config))):
        monkeypatch.setenv(f"ALIGNLOOP_{name}", value)
    res = CliRunner().invoke(app, ["rollout", "status", "--agent", "bot"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"agent bot: rollout {flag.rollout_id} rolled_back at 0% candidate {good} "
                               f"(flag version 5)")
    assert "rollback" in lines[-1] and "carol: complaints" in lines[-1] and len(lines) == 6
    res = CliRunner().invoke(app, ["rollout", "pause", "--agent", "bot"])
    assert isinstance(res.exception, UserError) and "it is rolled_back (only canary)" in str(res.exception)
    # a new rollout starts from the policy that serves now (the rollback restored the base model)
    again = ops.start(s, "bot", good, actor="alice")
    assert again.version == 6 and again.rollout_id != flag.rollout_id and again.baseline.policy_id == "base"
