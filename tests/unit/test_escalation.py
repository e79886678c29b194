"""Escalator: signals -> priority, budgets per tier, fraction cap, priority order, audit sample, metrics."""
from __future__ import annotations

import json

from schemas.verdict import Verdict
from streams.escalation.escalator import Escalator, TokenBucket
from streams.escalation.config import EscalationConfig, TierBudget


def v(judge: str = "quality", passed: bool = True, confidence: float = 0.9, tags: list[str] | None = None,
      **scores: float) -> Verdict:
    return Verdict(judge=judge, passed=passed, confidence=confidence, tags=tags or [], scores=scores)


def cfg(**kw) -> EscalationConfig:
    base = dict(audit_rate=0.0, max_fraction=1.0, reserve_tokens=0.0,
                tiers={"llm": TierBudget(per_minute=1000, per_hour=100000), "human": TierBudget(per_minute=5,
                                                                                                per_hour=10)})
    base.update(kw)
    return EscalationConfig(**base)


def test_confident_pass_is_not_a_candidate() -> None:
    a = Escalator(cfg()).assess("t", [v(), v("policy", safety=1.0)], "pass")
    assert a.priority == 0.0 and a.reasons == []


def test_each_signal_raises_priority() -> None:
    e = Escalator(cfg())
    low = e.assess("t", [v(confidence=0.3)], "pass")
    assert "low_confidence_pass" in low.reasons and low.priority == 0.75
    risky = e.assess("t", [v(tags=["pii_echo"])], "pass")
    assert risky.reasons == ["risk_tags:pii_echo"] and risky.priority == 0.6
    split = e.assess("t", [v("a", safety=1.0), v("b", safety=0.2)], "pass")
    assert "judges_disagree" in split.reasons and split.priority == 0.6
    both = e.assess("t", [v("a", confidence=0.3, tags=["pii_echo"], safety=1.0), v("b", safety=0.2)], "pass")
    assert both.priority == 0.75 + 2 * 0.1  # strongest + agreement bonus per extra signal
    learned_bad = e.assess("t", [v()], "pass", learned=(0.1, 0.4))
    assert learned_bad.reasons == ["learned_disagrees_bad"] and learned_bad.priority == 0.9
    uncertain = e.assess("t", [v()], "pass", learned=(0.5, 1.0))
    assert uncertain.reasons == ["learned_uncertain"] and uncertain.priority == 0.7


def test_confident_failures_need_no_second_opinion_but_doubtful_ones_do() -> None:
    e = Escalator(cfg())
    assert e.assess("t", [v(passed=False, confidence=0.9, tags=["pii_echo"], safety=0.0)], "fail").priority == 0.0
    doubt = e.assess("t", [v(passed=False, confidence=0.375, safety=0.3)], "flag")
    assert doubt.reasons == ["low_confidence_fail"] and doubt.priority == 0.375  # 0.5 weight * 0.75


def test_learning_judge_veto_damps_a_confident_good() -> None:
    e = Escalator(cfg())
    plain = e.assess("t", [v(tags=["pii_echo"])], "pass").priority
    vetoed = e.assess("t", [v(tags=["pii_echo"])], "pass", learned=(0.99, 0.05)).priority
    assert vetoed < plain * 0.5


def test_judge_errors_are_uncertain_and_human_tags_route_to_humans() -> None:
    e = Escalator(cfg(human_tags=["risk:self_harm_instructions"]))
    err = e.assess("t", [Verdict(judge="x", status="error", error="boom")], "flag")
    assert "judge_error" in err.reasons and err.priority == 1.0
    h = e.assess("t", [v(tags=["risk:self_harm_instructions"])], "pass")
    assert h.tier == "human"


def test_budget_per_minute_and_priority_order() -> None:
    e = Escalator(cfg(tiers={"llm": TierBudget(per_minute=3, per_hour=100)}, window_s=10))
    for i, p in enumerate([0.5, 0.9, 0.4, 0.8, 0.7]):
        a = e.assess(f"t{i}", [v(tags=["pii_echo"])], "pass")
        a.priority = p
        e.offer(f"t{i}", a, now=0.0)
    out = e.drain(0.0)
    assert [x.payload for x in out] == ["t1", "t3", "t4"]  # most informative first, 3 per minute
    assert e.pending == 2 and e.drain(5.0) == []          # not refilled yet, still inside the window
    later = e.drain(25.0)                                  # 20 s later one token is back (3/min)
    assert [x.payload for x in later] == ["t0"]
    assert e.counts["dropped_over_budget"] == 1           # t2 waited past the window
    s = e.stats()
    assert s["escalated"] == 4 and s["seen"] == 5 and s["escalation_rate"] == 0.8


def test_hour_budget_and_fraction_cap() -> None:
    e = Escalator(cfg(tiers={"llm": TierBudget(per_minute=100, per_hour=2)}))
    for i in range(5):
        e.offer(str(i), e.assess(str(i), [v(confidence=0.1)], "pass"), now=0.0)
    assert len(e.drain(0.0, flush=True)) == 2
    f = Escalator(cfg(max_fraction=0.1))
    got = 0
    for i in range(200):
        f.offer(str(i), f.assess(str(i), [v(confidence=0.1)], "pass"), now=i * 0.01)
        got += len(f.drain(i * 0.01))
    assert got <= 0.1 * 200 + 1 and f.stats()["escalation_rate"] <= 0.105


def test_reserve_keeps_scarce_budget_for_high_priority() -> None:
    e = Escalator(cfg(max_fraction=0.5, reserve_tokens=10))
    lo = e.assess("lo", [v(tags=["pii_echo"])], "pass")  # 0.6
    e.offer("lo", lo, 0.0)
    assert e.drain(0.0) == []  # 1.5 tokens < 1 + 0.4 * 10
    hi = e.assess("hi", [v(confidence=0.0)], "pass")  # 1.0
    e.offer("hi", hi, 0.0)
    assert [x.payload for x in e.drain(0.0)] == ["hi"]


def test_audit_sample_is_deterministic_and_jumps_the_queue() -> None:
    e = Escalator(cfg(audit_rate=0.2))
    audited = [t for t in (f"trace-{i}" for i in range(1000)) if e.is_audit(t)]
    assert 150 < len(audited) < 250 and audited == [t for t in (f"trace-{i}" for i in range(1000)) if e.is_audit(t)]
    a = e.assess(audited[0], [v()], "pass")
    assert a.audit and a.priority == 0.0
    e.offer(audited[0], a, 0.0)
    assert [x.payload for x in e.drain(0.0)] == [audited[0]] and e.counts["audit"] == 1


def test_token_bucket_refills_to_capacity() -> None:
    b = TokenBucket(2, 1.0, now=0)
    b.take()
    b.take()
    assert not b.available(0.5) and b.available(1.0)
    b.refill(100)
    assert b.tokens == 2


def _run_with_crashes(crash_after: list[int], replay_back: int, n: int = 3000, batch: int = 50, restore: bool = True):
    """One partition of candidates at 100 traces/s through an escalator that is killed after the given batches:
    the next one restores the newest checkpoint (as JSON, like the header) and Kafka redelivers from
    ``replay_back`` traces before the crash. Returns the (trace index, time) of every escalation published."""
    import random

    from streams.escalation.escalator import Assessment, EscalatorState

    c = cfg(max_fraction=0.08, window_s=2.0, tiers={"llm": TierBudget(per_minute=60, per_hour=10_000)})
    rng = random.Random(4)
    prios = [rng.random() for _ in range(n)]
    esc, checkpoint, published, i, batches = Escalator(c), None, [], 0, 0
    crashes = list(crash_after)
    while i < n:
        now = i / 100.0
        for k in range(i, min(n, i + batch)):
            src = ("agent.traces", 0, k)
            seen = esc.replay(src)
            if seen != "skip":
                esc.offer(k, Assessment(prios[k], ["x"]), now, source=src, again=seen == "again")
        admitted = esc.drain(now)
        if admitted:
            published += [(e.payload, now) for e in admitted]
            checkpoint = esc.state(now).model_dump_json()
        i += batch
        batches += 1
        if crashes and batches == crashes[0]:
            crashes.pop(0)
            esc = Escalator(c)
            if checkpoint is not None and restore:
                esc.restore(EscalatorState.model_validate_json(checkpoint))
            i = max(0, i - replay_back)
    return published


def test_restarts_escalate_each_trace_once_and_keep_the_budget() -> None:
    clean = _run_with_crashes([], 0)
    crashed = _run_with_crashes([11, 29, 40], replay_back=120)
    ids = [k for k, _ in crashed]
    assert len(ids) == len(set(ids)), "a trace escalated twice"
    assert len(ids) <= 0.08 * 3000 + 1
    span = crashed[-1][1] - crashed[0][1]
    assert len(ids) <= 60 + span * 60 / 60 + 1, "the per-minute bucket: capacity plus its refill over the run"
    assert abs(len(crashed) - len(clean)) <= 0.1 * len(clean)  # about what an uninterrupted run escalates
    # the same crashes without the checkpoint (today's behaviour before this change): duplicates, over budget
    naive = _run_with_crashes([11, 29, 40], replay_back=120, restore=False)
    assert len({k for k, _ in naive}) < len(naive) and len(naive) > 60 + span + 1


def test_replay_without_a_restore_skips_offsets_read_twice() -> None:
    from streams.escalation.escalator import Assessment

    e = Escalator(cfg())
    assert e.replay(("t", 0, 5)) == "new"
    e.offer("a", Assessment(0.9, ["x"]), 0.0, source=("t", 0, 5))
    assert e.replay(("t", 0, 5)) == "skip" and e.replay(("t", 0, 4)) == "skip" and e.replay(("t", 1, 4)) == "new"


def test_hook_clock_is_the_streams_and_a_quiet_spell_refills_no_budget() -> None:
    """Budget per minute of traffic: while no trace arrives (or a restarted monitor waits for its partitions)
    the clock runs on only far enough to drain waiting candidates."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from streams.escalation.wiring import Checkpoint, EscalationHook, EscalationMetrics
    from streams.judges.config import JudgesConfig
    from tests.unit._drift_helpers import judged_stream

    wall = [1000.0]
    sent = []

    async def send(topic, key, value, headers=None):
        sent.append(headers)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    jc = JudgesConfig(escalation=cfg(max_fraction=1.0, min_priority=0.0, audit_rate=1.0,
                                     tiers={"llm": TierBudget(per_minute=5, per_hour=100)}))
    hook = EscalationHook(jc, send, "judge.escalations", EscalationMetrics(CollectorRegistry()), lambda: wall[0])
    traces = list(judged_stream(2, 40))
    t0 = traces[0].processed_at.timestamp()
    asyncio.run(hook(traces[:20]))
    assert len(sent) == 5 and hook.now() == t0  # a full bucket; every trace is an audit candidate
    wall[0] += 3600  # an hour without traffic
    assert hook.now() == t0 + jc.escalation.window_s
    asyncio.run(hook.tick())
    assert len(sent) == 5  # no refill for time without traffic
    cp = Checkpoint.model_validate_json(sent[-1][0][1])
    assert cp.seq == 1 and cp.state.counts["escalated"] == 5
    restarted = EscalationHook(jc, send, "judge.escalations", EscalationMetrics(CollectorRegistry()),
                               lambda: wall[0], writer="", checkpoint=cp)
    asyncio.run(restarted(traces))  # the same traces again, redelivered after a crash
    # the 5 escalated are skipped; the 15 still pending at the checkpoint are offered again (the bucket is empty)
    assert len(sent) == 5 and restarted.metrics.replayed._value.get() == 5
    assert restarted.escalator.pending == 35 and restarted.escalator.counts["seen"] == 40


def test_newest_checkpoint_of_this_writer_wins_and_forged_headers_are_counted() -> None:
    from prometheus_client import CollectorRegistry

    from streams.escalation.wiring import STATE_HEADER, Checkpoint, EscalationMetrics, newest_checkpoint

    state = Escalator(cfg()).state(5.0)

    def header(writer: str, seq: int) -> list[tuple[str, bytes]]:
        return [(STATE_HEADER, Checkpoint(writer=writer, seq=seq, state=state).model_dump_json().encode())]

    good = json.loads(header("me", 3)[0][1])
    overflow = dict(good, seq=2**64 - 1)
    negative = json.loads(json.dumps(good))
    negative["state"]["fraction_tokens"] = float("1e300")
    records = [header("me", 2), header("me", 3), header("other", 9), [("unrelated", b"x")],
               [(STATE_HEADER, b"\x80\x04pickle")], [(STATE_HEADER, json.dumps(overflow).encode())],
               [(STATE_HEADER, json.dumps(negative).encode())]]
    metrics = EscalationMetrics(CollectorRegistry())
    best = newest_checkpoint(records, "me", metrics)
    assert best is not None and best.seq == 3 and best.writer == "me"
    assert metrics.invalid._value.get() == 3
    assert newest_checkpoint([], "me", metrics) is None
