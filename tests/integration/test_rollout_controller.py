"""The rollout controller on a real broker: it steps a healthy candidate, trips the circuit breaker on a critical
breach, skips bad input with a reason counted, and survives `kill -9` twice with no lost or doubled decision."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from alignloop import rollout_ops as ops
from alignloop.configs import load_rollout_config
from alignloop.rollout_controller import Controller
from alignloop.rollout_store import current_flags, read_committed, read_decisions, read_rollouts
from alignloop.runner import REPO, settings_env
from connectors.audit import read_entries, verify
from connectors.kafka import producer
from schemas.rollout import RolloutFlag
from schemas.topics import ROLLOUT
from tests.rollout_helpers import make_adapter, publish_judged, send, traffic, write_config

pytestmark = pytest.mark.integration


def _flag(s, agent: str) -> RolloutFlag:
    return asyncio.run(current_flags(s))[0][agent]


async def _ticks(ctl: Controller, n: int):
    out = []
    for _ in range(n):
        out.extend(await ctl.tick())
    return out


def test_circuit_breaker_rolls_back_at_once_and_bad_input_is_skipped(kafka_settings, tmp_path) -> None:
    s = kafka_settings.model_copy(update={"rollout_config": write_config(tmp_path / "rollout.yaml")})
    adapter = make_adapter(s, tmp_path, "sft-risky")
    flag = ops.start(s, "bot", adapter, actor="alice", steps=[50, 100])
    rng = random.Random(1)
    healthy = traffic(flag, 40, rng)
    breach = [t for t in traffic(flag, 40, rng, candidate_tags=["disallowed:malware"])
              if t.trace.policy_id == adapter][:1]
    other = traffic(flag.model_copy(update={"agent_id": "other-bot"}), 5, rng)
    unattributed = [t.model_copy(update={"trace": t.trace.model_copy(update={"policy_id": "mystery"})})
                    for t in traffic(flag, 3, rng)]
    send(s, [b"{not json", b'{"schema_version": 99}', *healthy, *other, *unattributed])
    # a flag record going backwards and one whose weights do not sum: skipped, the flag in force stays
    bad = [flag.model_copy(update={"version": 0}).model_dump_json().encode(),
           flag.model_dump_json().replace('"candidate":50', '"candidate":70').encode()]

    async def publish_bad() -> None:
        async with producer(s) as prod:
            for v in bad:
                await prod.send_and_wait(s.topic(ROLLOUT), key=b"bot", value=v)
    asyncio.run(publish_bad())

    async def run() -> tuple[list, Controller]:
        ctl = Controller(s, load_rollout_config(s))
        await ctl.open()
        try:
            first = await _ticks(ctl, 1)
            assert ctl.runs["bot"].traffic.skipped == {"unattributed": 3}
            await publish_judged(s, breach)
            return first + await _ticks(ctl, 1), ctl
        finally:
            await ctl.close()

    made, ctl = asyncio.run(run())
    reg = ctl.metrics.registry
    assert reg.get_sample_value("alignloop_rollout_skipped_turns", {"agent_id": "bot", "rollout_id": flag.rollout_id,
                                                                    "reason": "unattributed"}) == 3
    assert reg.get_sample_value("alignloop_rollout_skipped_records_total",
                                {"topic": s.topic("traces.judged"), "reason": "invalid"}) == 2
    assert reg.get_sample_value("alignloop_rollout_skipped_records_total",
                                {"topic": s.topic("rollout.flags"), "reason": "bad_flag"}) == 2
    # 40 healthy conversations are below min_conversations (20 per arm at 50%: not both met) or step; then the
    # breach rolls back on the very next look, whatever the statistics say
    assert made[-1].action == "rollback" and made[-1].reason.startswith("circuit breaker: 1 critical")
    assert made[-1].counts["candidate"].critical_breaches == 1
    after = _flag(s, "bot")
    assert (after.stage, after.candidate_weight, after.version) == ("rolled_back", 0, made[-1].flag_version)
    assert reg.get_sample_value("alignloop_rollout_decisions_total", {"agent_id": "bot", "action": "rollback"}) == 1


def _controller(s, log) -> subprocess.Popen:
    env = {**settings_env(s), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "alignloop.cli", "rollout", "controller", "--loglevel", "info",
                             "--metrics-port", "0"], cwd=REPO, env=env, stdout=log, stderr=log,
                            start_new_session=True)


def _one_step_of_traffic(flag: RolloutFlag, rng: random.Random, candidates: int = 28) -> list:
    """Conversations at ``flag``'s weights with exactly ``candidates`` on the candidate arm: enough for one step
    (20 per arm in all, 15 at a weight) and never for two, so each step waits for the traffic the test sends after
    seeing the step before it (a backlog once let a restarted controller step twice between two looks of the test,
    and the second kill never came)."""
    out: list = []
    while candidates:
        out.extend(traffic(flag, 1, rng))
        candidates -= out[-1].trace.policy_id == flag.candidate.policy_id
    return out


def test_kill_9_twice_loses_no_decision_and_takes_no_step_twice(kafka_settings, tmp_path) -> None:
    s = kafka_settings.model_copy(update={"rollout_config": write_config(tmp_path / "rollout.yaml")})
    adapter = make_adapter(s, tmp_path, "sft-steady")
    flag = ops.start(s, "bot", adapter, actor="alice", steps=[5, 25, 50, 100])
    rng = random.Random(7)
    log = open(tmp_path / "controller.log", "ab")
    proc = _controller(s, log)
    kills, fed, deadline = 0, 0, time.monotonic() + 120  # fed: the last flag version sent its step's traffic
    try:
        while time.monotonic() < deadline:
            current = _flag(s, "bot")
            if current.stage != "canary":
                break
            # kill -9 right after the first and the second step: mid-rollout, analysis state in memory
            if kills < 2 and current.version >= 2 + kills:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                kills += 1
                send(s, _one_step_of_traffic(current, rng))    # traffic keeps coming while it is down
                fed = current.version
                proc = _controller(s, log)
            if current.version > fed:
                send(s, _one_step_of_traffic(current, rng))
                fed = current.version
            time.sleep(0.3)
    finally:
        if proc.poll() is None:  # a third kill -9, right after the promotion: its row and audit entry may be lost
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(15)
    assert kills == 2, (tmp_path / "controller.log").read_text()[-3000:]
    # a restarted controller catches the table and the audit trail up with every committed decision
    once = subprocess.run([sys.executable, "-m", "alignloop.cli", "rollout", "controller", "--once",
                           "--metrics-port", "0"], cwd=REPO, env={**settings_env(s), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert once.returncode == 0, once.stderr[-2000:]
    decisions = [d for d, _ in asyncio.run(read_decisions(s, flag.rollout_id))]
    moves = [(d.action, d.flag_version, d.weight_before, d.weight_after) for d in decisions if d.action != "hold"]
    assert moves == [("start", 1, 0, 5), ("step", 2, 5, 25), ("step", 3, 25, 50), ("promote", 4, 50, 100)], \
        (tmp_path / "controller.log").read_text()[-3000:]
    assert len({d.decision_id for d in decisions}) == len(decisions)
    # every step waited for its own conversations, counted from where its weight began
    for d in decisions[1:]:
        assert d.counts["candidate"].conversations >= 15 and d.actor == "controller"
    # agents never saw a flag version go backwards: every committed record on the topic, in order
    versions = [RolloutFlag.model_validate_json(m.value).version
                for m in asyncio.run(read_committed(s, s.topic(ROLLOUT)))]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) == 4
    # Delta and the audit trail hold each decision exactly once
    rows = read_rollouts(s, flag.rollout_id)
    assert sorted(r["decision_id"] for r in rows) == sorted(d.decision_id for d in decisions)
    audited = [e.details["decision_id"] for e, _ in asyncio.run(read_entries(s)) if e.action.startswith("rollout.")]
    assert sorted(audited) == sorted(d.decision_id for d in decisions)
    assert asyncio.run(verify(s)).ok


def test_run_canary_rolls_back_a_worse_candidate_on_the_statistics(kafka_settings, tmp_path) -> None:
    """The demo's entry point: start + control in-process while traffic flows; a candidate whose judge score is
    0.2 lower is rolled back by the test (not the breaker), at the first weight."""
    import threading

    from alignloop.rollout_controller import run_canary

    s = kafka_settings.model_copy(update={"rollout_config": write_config(tmp_path / "rollout.yaml")})
    adapter = make_adapter(s, tmp_path, "sft-worse")
    stop, rng = threading.Event(), random.Random(3)

    def fleet() -> None:  # conversations served per the flag in force, the candidate 0.2 worse
        while not stop.is_set():
            flags = asyncio.run(current_flags(s))[0]
            if "bot" in flags:
                send(s, traffic(flags["bot"], 120, rng, candidate_score=0.6))
            time.sleep(0.2)

    t = threading.Thread(target=fleet, daemon=True)
    t.start()
    try:
            out = run_canary(s, "bot", adapter, steps=[20, 50, 100], timeout_s=90)
    finally:
        stop.set()
        t.join(30)
    assert not out["timed_out"] and out["stage"] == "rolled_back", out["decisions"]
    assert [d["action"] for d in out["decisions"]] == ["start", "rollback"]
    assert out["decisions"][-1]["reason"].startswith("candidate worse on judge_score")
    judge = next(m for m in out["metrics"] if m["name"] == "judge_score")
    assert judge["verdict"] == "harm" and judge["harm_lower"] > 0
    assert out["counts"]["candidate"]["conversations"] >= 10
