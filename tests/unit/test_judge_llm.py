"""The LLM judge client and the high-fidelity step against a local chat-completions server with failure modes."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from connectors.llm_judge import BudgetExceeded, LlmJudgeClient, LlmJudgeError, Unjudgeable, parse_json_object
from schemas.trace import ToolCall, Trace
from schemas.verdict import DIMENSIONS, JudgedTrace, SourceRef
from streams.judges.config import LlmJudgeConfig
from streams.hifi.step import EscalationEvent, HighFidelityJudge
from tests.fakes.llm_server import FakeLlmServer


@pytest.fixture
def server() -> Any:
    with FakeLlmServer(timeout_sleep_s=1.0) as s:
        yield s


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)


def make_client(server: FakeLlmServer, sleeps: Sleeps | None = None, **cfg: Any) -> LlmJudgeClient:
    base = dict(base_url=server.base_url, model="judge-model", timeout_s=0.5, max_retries=3, backoff_base_s=0.01)
    base.update(cfg)
    return LlmJudgeClient(LlmJudgeConfig(**base), SecretStr("sk-test-123"), sleep=sleeps or Sleeps(), seed=1)


def trace(answer: str = "Done, the event is booked.", tid: str = "t1", **kw: Any) -> Trace:
    return Trace(trace_id=tid, conversation_id="c", user_message="Book a room for Friday.", final_response=answer,
                 tool_calls=[ToolCall(name="calendar.create_event", args={"day": "fri"}, result={"id": 3})], **kw)


def event(t: Trace, tier: str = "llm") -> EscalationEvent:
    from datetime import datetime, timezone

    jt = JudgedTrace(trace=t, source=SourceRef(topic="agent.traces", partition=0, offset=7),
                     processed_at=datetime.now(timezone.utc))
    return EscalationEvent(judged=jt, priority=0.8, reasons=["risk_tags"], tier=tier)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _judge(client: LlmJudgeClient, *traces: Trace) -> list[Any]:
    try:
        return [await client.judge_trace(t) for t in traces]
    finally:
        await client.aclose()


def test_parse_json_object_accepts_fences_and_rejects_non_objects() -> None:
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object(' {"a": 2} ') == {"a": 2}
    with pytest.raises(ValueError):
        parse_json_object("[1, 2]")
    with pytest.raises(ValueError):
        parse_json_object("not json")


def test_judges_a_trace_over_the_real_protocol(server: FakeLlmServer) -> None:
    good, bad = run(_judge(make_client(server), trace(), trace("BAD answer", tid="t2")))
    assert good.passed and good.scores["safety"] == 0.9 and bad.passed is False and bad.scores["task_success"] == 0.2
    req = server.requests[0]
    assert req["model"] == "judge-model" and req["temperature"] == 0.0
    assert req["response_format"] == {"type": "json_object"}
    assert req["messages"][0]["role"] == "system" and "task_success" in req["messages"][0]["content"]
    assert "calendar.create_event" in req["messages"][1]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test-123"


def test_retries_429_with_retry_after_500_and_timeouts(server: FakeLlmServer) -> None:
    server.retry_after = "3"
    server.script(["429", "500", "timeout"])
    sleeps = Sleeps()
    client = make_client(server, sleeps)
    (v,) = run(_judge(client, trace()))
    assert v.passed
    assert client.counts["rate_limited"] == 1 and client.counts["server_errors"] == 1
    assert client.counts["timeouts"] == 1 and client.counts["retries"] == 3 and client.counts["requests"] == 4
    assert sleeps.calls[0] == 3.0  # Retry-After honoured
    assert 0 < sleeps.calls[1] < sleeps.calls[2]  # exponential backoff


def test_endpoint_down_raises_transient_error(server: FakeLlmServer) -> None:
    server.script(["500"] * 10)
    client = make_client(server, max_retries=2)
    with pytest.raises(LlmJudgeError, match="HTTP 500"):
        run(_judge(client, trace()))
    assert client.counts["requests"] == 3
    dead = LlmJudgeClient(LlmJudgeConfig(base_url="http://127.0.0.1:9/v1", max_retries=1, timeout_s=0.5),
                          sleep=Sleeps())
    with pytest.raises(LlmJudgeError, match="connection error"):
        run(_judge(dead, trace()))


def test_malformed_replies_are_reasked_then_unjudgeable(server: FakeLlmServer) -> None:
    server.script(["malformed", "bad_schema", "garbage"])
    client = make_client(server)
    (v,) = run(_judge(client, trace()))
    assert v.passed and client.counts["malformed"] == 3
    server.script(["malformed"] * 4)
    with pytest.raises(Unjudgeable, match="malformed"):
        run(_judge(make_client(server), trace()))


def test_cache_by_content_fingerprint(server: FakeLlmServer) -> None:
    client = make_client(server)
    a, b = run(_judge(client, trace(), trace(tid="other-id-same-content")))
    assert a == b and len(server.requests) == 1 and client.counts["cache_hits"] == 1


def test_hourly_spend_cap_blocks_and_reports_wait(server: FakeLlmServer) -> None:
    # each fake reply reports 1000 prompt + 100 completion tokens = 0.001 + 0.0002 = 0.0012 USD at these prices
    now = [1000.0]
    client = LlmJudgeClient(LlmJudgeConfig(base_url=server.base_url, max_cost_per_hour=0.0025, price_per_1k_input=0.001,
                                           price_per_1k_output=0.002, max_tokens=50), sleep=Sleeps(),
                            clock=lambda: now[0])

    async def go() -> None:
        try:
            await client.judge_trace(trace(tid="a", answer="one"))
            await client.judge_trace(trace(tid="b", answer="two"))
            with pytest.raises(BudgetExceeded) as exc:
                await client.judge_trace(trace(tid="c", answer="three"))
            assert len(server.requests) == 2 and exc.value.retry_after_s == pytest.approx(3600.0)
            assert client.counts["budget_blocked"] == 1
            now[0] += 3601  # an hour later the spend has rolled off
            assert (await client.judge_trace(trace(tid="d", answer="four"))).passed
        finally:
            await client.aclose()
    run(go())


def test_concurrency_limit(server: FakeLlmServer) -> None:
    server.latency_s = 0.15
    client = make_client(server, concurrency=2, timeout_s=5)

    async def go() -> None:
        try:
            await asyncio.gather(*(client.judge_trace(trace(answer=f"answer {i}", tid=str(i))) for i in range(6)))
        finally:
            await client.aclose()
    t0 = time.perf_counter()
    run(go())
    assert server.max_in_flight == 2 and time.perf_counter() - t0 >= 0.4


def test_pairwise_with_position_swap(server: FakeLlmServer) -> None:
    client = make_client(server)
    pr = run(client.judge_pair("q", "meh", "GOOD answer"))
    assert pr.winner == "j" and pr.strength == 0.8
    user_msgs = [r["messages"][1]["content"] for r in server.requests]
    assert any(m.index("meh") < m.index("GOOD") for m in user_msgs) and any(
        m.index("GOOD") < m.index("meh") for m in user_msgs)  # both orders asked
    server.position_bias = True
    biased = run(client.judge_pair("q2", "x", "y"))
    assert biased.winner == "inconsistent"  # always-A cancels out under the swap


def test_high_fidelity_step_labels_preferences_and_human_queue(server: FakeLlmServer) -> None:
    async def go() -> list[Any]:
        hf = HighFidelityJudge(make_client(server))
        try:
            return [await hf.handle(event(trace("BAD: said done but the call failed"))),
                    await hf.handle(event(trace(tid="p", candidates=["short", "GOOD and complete"]))),
                    await hf.handle(event(trace(tid="h"), tier="human"))]
        finally:
            await hf.client.aclose()
    labelled, paired, human = run(go())
    (label,) = labelled.labels
    assert label.passed is False and label.source == "llm_judge" and label.annotator == "judge-model"
    assert label.trace_id == "t1" and label.judge_version == "llm-1" and not labelled.human
    (pref,) = paired.preferences
    assert pref.chosen_idx == 1 and pref.rejected_idx == 0 and pref.metadata["position_swap"] is True
    assert pref.metadata["trace_id"] == "p"
    assert human.human[0].reason == "routed_to_human" and not human.labels
    again = run(_rehandle(server, trace("BAD: said done but the call failed")))
    assert again.labels[0].label_id == label.label_id  # deterministic ids: replays dedupe


async def _rehandle(server: FakeLlmServer, t: Trace) -> Any:
    hf = HighFidelityJudge(make_client(server))
    try:
        return await hf.handle(event(t))
    finally:
        await hf.client.aclose()


def test_unjudgeable_and_low_confidence_go_to_humans(server: FakeLlmServer) -> None:
    server.script(["unjudgeable"])
    out = run(_rehandle(server, trace(tid="u")))
    assert [h.reason for h in out.human] == ["llm_unjudgeable"] and not out.labels
    server.confidence = 0.2
    out2 = run(_rehandle(server, trace(tid="lc", answer="different")))
    assert [h.reason for h in out2.human] == ["llm_low_confidence"] and not out2.labels
    server.script(["500"] * 10)
    with pytest.raises(LlmJudgeError):  # transient: the caller keeps the escalation and retries
        run(_rehandle(server, trace(tid="down", answer="down")))


# ---- issue 13 item 9: stalls surfaced, verdicts consistent, reply types strict ------------------------------------
def test_a_hung_endpoint_is_cut_off_at_the_deadline_counted_logged_and_visible(server: FakeLlmServer,
                                                                                caplog: pytest.LogCaptureFixture
                                                                                ) -> None:
    server.hang_s = 10.0
    server.script(["hang", "trickle"])  # silent, then alive but never done: httpx's read timeout never fires
    client = make_client(server, timeout_s=0.5, max_retries=1)
    seen: list[tuple[int, float]] = []

    async def go() -> None:
        task = asyncio.create_task(client.judge_trace(trace()))
        await asyncio.sleep(0.3)
        seen.append(client.waiting())
        try:
            with pytest.raises(LlmJudgeError, match="timeout"):
                await task
        finally:
            await client.aclose()
    t0 = time.perf_counter()
    with caplog.at_level("WARNING", logger="alignloop.judge.llm"):
        run(go())
    assert time.perf_counter() - t0 < 3.0  # two attempts of 0.5 s, not the endpoint's 10 s
    assert seen[0][0] == 1 and 0.25 <= seen[0][1] < 1.0  # one request waiting, and for how long
    assert client.waiting() == (0, 0.0)
    assert client.counts["stalls"] == 2 and client.counts["requests"] == 2
    stalls = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalls) == 2 and "attempt 2 of 2" in stalls[1].getMessage()


def test_the_judge_worker_exposes_stalls_and_waiting_requests_then_recovers(server: FakeLlmServer) -> None:
    from prometheus_client import CollectorRegistry

    from schemas.settings import Settings
    from streams.hifi.worker import JudgeWorker
    from streams.judges.config import JudgesConfig

    server.hang_s = 10.0
    server.script(["trickle", "trickle"])  # hung for two attempts, then healthy
    cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url, model="m", timeout_s=0.5, max_retries=0,
                                          backoff_base_s=0.05))
    registry = CollectorRegistry()
    worker = JudgeWorker(Settings(), cfg, LlmJudgeClient(cfg.llm), registry)
    value = event(trace()).model_dump_json().encode()
    sample = registry.get_sample_value
    during: list[Any] = []

    async def go() -> Any:
        task = asyncio.create_task(worker.process(value))
        await asyncio.sleep(0.3)
        during.append((sample("alignloop_judge_llm_waiting_requests"),
                       sample("alignloop_judge_llm_waiting_oldest_seconds")))
        try:
            return await asyncio.wait_for(task, 5)
        finally:
            await worker.client.aclose()
    out = run(go())
    assert during[0][0] == 1 and during[0][1] >= 0.25  # visible while hung, before any retry gave up
    assert [lab.trace_id for lab in out.labels] == ["t1"]  # recovered: nothing lost
    assert sample("alignloop_judge_llm_stalls_total") == 2
    assert sample("alignloop_judge_llm_failures_total", {"kind": "timeout"}) == 2
    assert sample("alignloop_judge_endpoint_failures_total", {"kind": "endpoint"}) == 2
    assert sample("alignloop_judge_llm_waiting_requests") == 0


def test_string_typed_numbers_and_booleans_are_rejected_not_coerced(server: FakeLlmServer) -> None:
    server.script(["string_numbers"])  # "0.95", "yes": re-asked, and the second, well-typed reply is kept
    client = make_client(server)
    (v,) = run(_judge(client, trace()))
    assert client.counts["malformed"] == 1 and client.counts["requests"] == 2 and v.confidence == 0.9
    server.script(["string_numbers"] * 4)
    with pytest.raises(Unjudgeable, match="malformed"):
        run(_judge(make_client(server), trace(tid="s", answer="typed as strings")))
    from connectors.llm_judge import PairJudgement, TraceJudgement

    ok = {"scores": {d: 0.9 for d in DIMENSIONS}, "passed": True, "confidence": 0.9}
    for bad in ({"confidence": "0.95"}, {"passed": "yes"}, {"passed": 1}, {"scores": {**ok["scores"], "safety": "1"}},
                {"confidence": float("nan")}):
        with pytest.raises(ValidationError):
            TraceJudgement.model_validate({**ok, **bad})
    with pytest.raises(ValidationError):
        PairJudgement.model_validate({"winner": "A", "strength": "0.8"})


@pytest.mark.parametrize("scores, passed, why", [
    ({"safety": 0.1}, True, "safety=0.1 below the pass bar"),
    ({"task_success": 0.0, "tool_correctness": 0.3}, True, "task_success=0.0, tool_correctness=0.3 below"),
    ({}, False, "passed=false but no score is below"),
])
def test_verdicts_that_contradict_their_own_scores_are_named(scores: dict[str, float], passed: bool,
                                                            why: str) -> None:
    from connectors.llm_judge import TraceJudgement

    j = TraceJudgement.model_validate({"scores": {d: 0.9 for d in DIMENSIONS} | scores, "passed": passed,
                                       "confidence": 0.9})
    assert why in (j.contradiction() or "")
    consistent = TraceJudgement.model_validate({"scores": {d: 0.9 for d in DIMENSIONS} | scores,
                                                "passed": not passed, "confidence": 0.9})
    assert consistent.contradiction() is None


def test_a_contradictory_verdict_is_unjudgeable_counted_and_queued_for_a_person(server: FakeLlmServer) -> None:
    from connectors.llm_judge import InconsistentVerdict

    server.script(["contradictory"])
    client = make_client(server)
    with pytest.raises(InconsistentVerdict, match="passed=true but safety=0.1"):
        run(_judge(client, trace()))
    assert client.counts["inconsistent"] == 1 and client.counts["malformed"] == 0

    async def go() -> Any:
        hf = HighFidelityJudge(make_client(server))
        server.script(["contradictory"])
        try:
            return await hf.handle(event(trace(tid="x", answer="in range but contradictory"))), hf
        finally:
            await hf.client.aclose()
    out, hf = run(go())
    assert not out.labels and [h.reason for h in out.human] == ["llm_inconsistent_verdict"]
    assert "safety=0.1" in out.human[0].llm_rationale and hf.counts["inconsistent"] == 1


def test_the_judge_worker_queues_records_of_a_newer_contract_and_counts_them(server: FakeLlmServer) -> None:
    from prometheus_client import CollectorRegistry

    from schemas.settings import Settings
    from streams.hifi.worker import JudgeWorker
    from streams.judges.config import JudgesConfig

    cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url))
    registry = CollectorRegistry()
    worker = JudgeWorker(Settings(), cfg, LlmJudgeClient(cfg.llm), registry)
    future = event(trace()).model_dump(mode="json") | {"schema_version": 2}
    outs = [run(worker.process(json.dumps(future).encode())), run(worker.process(b"not an escalation"))]
    assert [o.human[0].reason for o in outs] == ["unsupported_schema_version", "bad_escalation_record"]
    assert json.loads(outs[0].human[0].raw)["schema_version"] == 2 and not outs[0].labels
    assert registry.get_sample_value("alignloop_judge_escalations_total", {"result": "unsupported_version"}) == 1
    assert registry.get_sample_value("alignloop_judge_escalations_total", {"result": "bad_record"}) == 1
    assert server.requests == []
    run(worker.client.aclose())
