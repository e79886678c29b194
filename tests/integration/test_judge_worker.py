"""`alignloop judge` against a real broker and a local chat-completions server with failure modes."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry

from connectors.kafka import producer, read_topic
from connectors.llm_judge import LlmJudgeClient
from schemas.preference import Label, Preference
from schemas.topics import ESCALATIONS, HUMAN_QUEUE, LABELS, PREFERENCES
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef
from streams.judges.config import JudgesConfig, LlmJudgeConfig
from streams.hifi.step import EscalationEvent, HumanQueueItem
from streams.hifi.worker import JudgeWorker
from tests.fakes.llm_server import FakeLlmServer

pytestmark = pytest.mark.integration


def escalation(tid: str, answer: str, candidates: list[str] | None = None) -> bytes:
    t = Trace(trace_id=tid, conversation_id="c", user_message="Book the room", final_response=answer,
              candidates=candidates or [])
    jt = JudgedTrace(trace=t, source=SourceRef(topic="agent.traces", partition=0, offset=1),
                     processed_at=datetime.now(timezone.utc))
    return EscalationEvent(judged=jt, priority=0.9, reasons=["risk_tags"]).model_dump_json().encode()


async def _produce(settings, values: list[bytes]) -> None:
    async with producer(settings) as prod:
        for v in values:
            await prod.send_and_wait(settings.topic(ESCALATIONS), v, key=b"k")


async def _run_until(worker: JudgeWorker, settings, n_labels: int, timeout_s: float = 60) -> None:
    task = asyncio.create_task(worker.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while loop.time() < deadline:
            if len(await read_topic(settings, settings.topic(LABELS), timeout_s=1)) >= n_labels:
                break
            await asyncio.sleep(0.5)
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 30)


def test_judge_worker_survives_a_flaky_endpoint_and_loses_nothing(kafka_settings) -> None:
    s = kafka_settings
    values = [escalation(f"t{i}", "BAD answer" if i % 2 else f"fine answer {i}") for i in range(6)]
    values.append(escalation("pair", "x", candidates=["meh", "GOOD one"]))
    values.append(b"this is not an escalation")
    with FakeLlmServer(timeout_sleep_s=1.0) as server:
        # down for a while (500s, a timeout, 429s, garbage) then healthy
        server.script(["500", "500", "timeout", "429", "500", "garbage", "500", "500", "500", "500", "500", "500"])
        # timeout_s 2: four hung attempts cost ~8 s, and a healthy reply (milliseconds) never nears it, even on a
        # loaded CI machine (at 0.5 s one healthy reply was cut off there too: 5 stalls, not 4)
        cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url, model="m", timeout_s=2.0, max_retries=1,
                                              backoff_base_s=0.05, concurrency=3))
        registry = CollectorRegistry()

        async def go() -> JudgeWorker:
            await _produce(s, values)
            worker = JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm), registry)
            await _run_until(worker, s, n_labels=7)
            return worker
        worker = asyncio.run(go())
    labels = [Label.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(LABELS)))]
    assert sorted({lab.trace_id for lab in labels}) == sorted([f"t{i}" for i in range(6)] + ["pair"])
    assert {lab.trace_id: lab.passed for lab in labels}["t1"] is False
    assert {lab.trace_id: lab.passed for lab in labels}["t2"] is True
    prefs = [Preference.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(PREFERENCES)))]
    assert len(prefs) == 1 and prefs[0].candidates[prefs[0].chosen_idx] == "GOOD one"
    human = [HumanQueueItem.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(HUMAN_QUEUE)))]
    assert [h.reason for h in human] == ["bad_escalation_record"] and human[0].raw == "this is not an escalation"
    from tests.helpers import table_rows

    sft = table_rows(s, "sft_examples", columns=["example_id"]).column("example_id").to_pylist()
    assert sorted(sft) == ["pair", "t0", "t2", "t4"]  # the LLM passed them with high scores; t1/t3/t5 failed
    failures = registry.get_sample_value("alignloop_judge_endpoint_failures_total", {"kind": "endpoint"})
    assert failures and failures >= 1  # the outage was counted, and waited out
    assert worker.client.counts["server_errors"] >= 5


def test_escalations_wait_uncommitted_while_the_endpoint_is_down(kafka_settings) -> None:
    s = kafka_settings
    with FakeLlmServer() as server:
        server.script(["500"] * 1000)  # down for the whole first run
        cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url, max_retries=0, backoff_base_s=0.05))

        async def first() -> None:
            await _produce(s, [escalation("w1", "fine"), escalation("w2", "BAD")])
            worker = JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm))
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(4)
            worker.stop.set()
            await asyncio.wait_for(task, 30)
        asyncio.run(first())
        assert asyncio.run(read_topic(s, s.topic(LABELS), timeout_s=1)) == []
        server.modes.clear()  # endpoint back: a new worker in the same group resumes from the committed offset

        async def second() -> None:
            await _run_until(JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm)), s, n_labels=2)
        asyncio.run(second())
    labels = [Label.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(LABELS)))]
    assert sorted(lab.trace_id for lab in labels) == ["w1", "w2"]


def test_a_hung_endpoint_shows_as_stalls_and_waiting_requests_and_nothing_is_lost(kafka_settings) -> None:
    """Issue 13 item 9: an endpoint that accepts requests and never finishes them (bytes trickle, so no read times
    out) is cut off at timeout_s per request; stalls and the waiting request show in /metrics while it lasts."""
    s = kafka_settings
    with FakeLlmServer(hang_s=30.0) as server:
        server.script(["trickle"] * 4)  # hung for four attempts, then healthy
        # timeout_s 2: four hung attempts cost ~8 s, and a healthy reply (milliseconds) never nears it, even on a
        # loaded CI machine (at 0.5 s one healthy reply was cut off there too: 5 stalls, not 4)
        cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url, model="m", timeout_s=2.0, max_retries=1,
                                              backoff_base_s=0.05, concurrency=1))
        registry = CollectorRegistry()
        seen: list[float] = []

        async def go() -> None:
            await _produce(s, [escalation("h1", "fine answer"), escalation("h2", "BAD answer")])
            worker = JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm), registry)

            async def watch() -> None:
                while True:
                    seen.append(registry.get_sample_value("alignloop_judge_llm_waiting_oldest_seconds") or 0.0)
                    await asyncio.sleep(0.1)
            watcher = asyncio.create_task(watch())
            try:
                await _run_until(worker, s, n_labels=2, timeout_s=60)
            finally:
                watcher.cancel()
        t0 = asyncio.run(_timed(go))
    assert t0 < 30, "the hang was waited out, not cut off"
    labels = [Label.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(LABELS)))]
    assert sorted(lab.trace_id for lab in labels) == ["h1", "h2"]
    assert registry.get_sample_value("alignloop_judge_llm_stalls_total") == 4
    assert registry.get_sample_value("alignloop_judge_llm_failures_total", {"kind": "timeout"}) == 4
    assert registry.get_sample_value("alignloop_judge_endpoint_failures_total", {"kind": "endpoint"}) == 2
    assert max(seen) >= 0.3 and registry.get_sample_value("alignloop_judge_llm_waiting_requests") == 0


async def _timed(fn) -> float:
    loop = asyncio.get_running_loop()
    t = loop.time()
    await fn()
    return loop.time() - t
