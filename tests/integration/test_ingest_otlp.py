"""OTLP ingest end to end: the real OpenTelemetry SDK exporting to `alignloop ingest otlp`, the real spine worker
landing the turns in Delta, the planted PII nowhere past agent.traces."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from alignloop.runner import REPO, settings_env
from connectors.kafka import read_topic
from schemas.dlq import DeadLetter
from schemas.topics import DLQ, JUDGED, TRACES
from tests.helpers import table_rows, wait_for
from tests.otel_agent import EMAIL, PHONE, agent_turn

pytestmark = pytest.mark.integration


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver(kafka_settings, tmp_path):
    port = _port()
    log = open(tmp_path / "otlp.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "alignloop.cli", "ingest", "otlp", "--port", str(port),
                             "--settle-s", "10"], cwd=REPO, env=settings_env(kafka_settings), stdout=log, stderr=log,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, (tmp_path / "otlp.log").read_text()
            return False

    wait_for(up, 60, what="the OTLP receiver to listen")
    yield url, proc
    proc.terminate()
    proc.wait(30)


def test_sdk_spans_land_as_traces_without_pii_and_bad_input_is_dead_lettered(kafka_settings, receiver,
                                                                                 worker_factory):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    s = kafka_settings
    url, proc = receiver
    worker = worker_factory(s).start()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-agent"}))
    # small batches: turns arrive split across requests, children before their agent span
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"),
                                                   max_export_batch_size=3, schedule_delay_millis=200))
    tracer = provider.get_tracer("shop-agent")
    answers = {agent_turn(tracer, i, conversation=f"conv-{i % 2}", tool_fails=i == 3)["answer"] for i in range(6)}
    with tracer.start_as_current_span("GET /health"):  # no GenAI span in its trace: dead-lettered
        pass
    assert provider.force_flush(30_000)

    # a malformed body is a 400 with a Status, and the receiver keeps serving
    bad = httpx.post(f"{url}/v1/traces", content=b"\x00garbage", headers={"content-type": "application/x-protobuf"})
    assert bad.status_code == 400
    assert httpx.post(f"{url}/v1/traces", content=b"{}", headers={"content-type": "text/xml"}).status_code == 415
    # partial success: one good root span with content, one span with a zero trace id
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "chat m", "startTimeUnixNano": "1000",
         "endTimeUnixNano": "2000", "attributes": [
             {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
             {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
                 [{"role": "user", "parts": [{"type": "text", "content": "json question"}]}])}},
             {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps(
                 [{"role": "assistant", "parts": [{"type": "text", "content": "json answer"}]}])}}]},
        {"traceId": "00" * 16, "spanId": "ef" * 8, "name": "zero"}]}]}]}
    r = httpx.post(f"{url}/v1/traces", json=body)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1" and "trace_id" in r.json()["partialSuccess"][
        "errorMessage"]
    provider.shutdown()
    answers.add("json answer")

    def landed():
        t = table_rows(s)
        return t.num_rows >= len(answers) and t
    rows = wait_for(landed, 90, what="every turn to land", worker=worker).to_pylist()
    assert proc.poll() is None, "the receiver died"
    assert len(rows) == len(answers) == 7, sorted(r["trace_id"] for r in rows)  # six agent turns + the JSON one: one row per turn, no duplicate
    assert {r["final_response"] for r in rows} == answers
    agent_rows = [r for r in rows if r["agent_id"] == "support-bot"]
    assert len(agent_rows) == 6 and {r["conversation_id"] for r in agent_rows} == {"conv-0", "conv-1"}
    assert all(r["tool_names"] == ["lookup_order"] for r in agent_rows)
    assert sum(r["n_tool_errors"] for r in agent_rows) == 1
    assert all(r["policy_id"] == "gpt-4o-mini-2024-07-18" for r in agent_rows)

    raw = [m.value.decode() for m in asyncio.run(read_topic(s, s.topic(TRACES)))]
    assert len(raw) == 7 and any(EMAIL in v for v in raw)  # the raw zone holds what the agent sent
    judged = [m.value.decode() for m in asyncio.run(read_topic(s, s.topic(JUDGED)))]
    assert len(judged) == 7
    for text in judged + [json.dumps(r, default=str) for r in rows]:
        assert EMAIL not in text and PHONE not in text and "555-0199" not in text

    letters = [DeadLetter.from_record(m.headers, m.key, m.value) for m in asyncio.run(read_topic(s, s.topic(DLQ)))]
    by_reason = sorted((d.stage, d.reason) for d in letters)
    assert by_reason == [("ingest", "unmappable"), ("ingest", "validation_error")]
    health = next(d for d in letters if d.reason == "unmappable")
    assert json.loads(health.original_bytes())["name"] == "GET /health" and "not a GenAI span" in health.error
    metrics = httpx.get(f"{url}/metrics").text
    assert 'alignloop_ingest_turns_total{source="otlp"} 7.0' in metrics
    assert 'alignloop_ingest_requests_total{status="400"} 1.0' in metrics

    # and out again: the landed turns exported for fine-tuning, still without the planted PII
    from trainers.export.openai_rules import check_sft
    from trainers.export.run import run_export

    res = run_export(s, "openai-sft", "traces", out=s.home / "export" / "sft.jsonl")
    lines = [json.loads(x) for x in res.files[0].read_text().splitlines()]
    assert len(lines) == 7 and all(check_sft(x) == [] for x in lines)
    assert sum("tools" in x for x in lines) == 6
    text = res.files[0].read_text()
    assert EMAIL not in text and PHONE not in text and "555-0199" not in text


def _spawn(args: list[str], settings, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "alignloop.cli", "ingest", *args], cwd=REPO,
                            env=settings_env(settings), stdout=log, stderr=log, start_new_session=True)


def _kill9(proc) -> None:
    proc.kill()  # SIGKILL: no shutdown code runs
    proc.wait(10)


def test_acknowledged_turns_land_once_across_kill_9_of_the_assembler_and_the_receiver(kafka_settings, tmp_path):
    """The real SDK exporter sends 36 turns in small batches; the assembler is killed -9 twice mid-stream and the
    receiver once after it acknowledged a wave. Every turn is on agent.traces once (committed reads), whole."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from alignloop.rollout_store import read_committed
    from connectors.kafka import end_offsets

    s = kafka_settings
    port = _port()
    url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "procs.log"
    recv = _spawn(["otlp", "--port", str(port), "--no-assemble"], s, logs)
    asm = _spawn(["assemble", "--settle-s", "2"], s, logs)
    procs = [recv, asm]

    def up():
        try:
            return httpx.get(f"{url}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert recv.poll() is None, logs.read_text()
            return False

    def published() -> int:
        return sum(asyncio.run(end_offsets(s, s.topic(TRACES))).values())  # includes uncommitted records

    try:
        wait_for(up, 60, what="the OTLP receiver to listen")
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"),
                                                       max_export_batch_size=3, schedule_delay_millis=20))
        tracer = provider.get_tracer("shop-agent")
        answers: dict[str, int] = {}
        n = 0
        for wave in range(2):  # the assembler is killed while the exporter is still sending
            for _ in range(12):
                answers[agent_turn(tracer, n, conversation=f"conv-{n}")["answer"]] = n
                n += 1
            before = published()
            wait_for(lambda: published() >= before + 3, 60, what="the assembler to publish some turns")
            _kill9(asm)
            asm = _spawn(["assemble", "--settle-s", "2"], s, logs)
            procs.append(asm)
        assert provider.force_flush(30_000)  # every request of both waves answered 200
        _kill9(recv)  # after its acks: what it acknowledged is in Kafka, it held nothing
        recv = _spawn(["otlp", "--port", str(port), "--no-assemble"], s, logs)
        procs.append(recv)
        wait_for(up, 60, what="the OTLP receiver to listen again")
        for _ in range(12):
            answers[agent_turn(tracer, n, conversation=f"conv-{n}")["answer"]] = n
            n += 1
        assert provider.force_flush(30_000)
        provider.shutdown()

        def landed():
            recs = asyncio.run(read_committed(s, s.topic(TRACES)))
            return len(recs) >= n and recs
        wait_for(landed, 60, what="every acknowledged turn on agent.traces")
        time.sleep(2.5)  # a settle window more: a duplicate would show up now
        recs = [json.loads(m.value) for m in asyncio.run(read_committed(s, s.topic(TRACES)))]
        assert asm.poll() is None and recv.poll() is None, logs.read_text()[-3000:]
        ids = [r["trace_id"] for r in recs]
        assert len(recs) == n == 36 and len(set(ids)) == n, sorted(ids)  # each turn once
        assert sorted(r["final_response"] for r in recs) == sorted(answers)  # and whole: the right answer each
        assert all(len(r["tool_calls"]) == 1 and r["user_message"].startswith("Where is order") for r in recs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
