"""GenAI spans from the real OpenTelemetry SDK, encoded by its OTLP encoder, mapped to Trace records."""
from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streams.ingest.genai import map_otel_trace, messages
from streams.ingest.otlp import PayloadError, decode_request, spans_of
from streams.ingest.turns import TurnBuffer
from tests.otel_agent import EMAIL, agent_turn


@pytest.fixture
def otel():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test-agent"), exporter
    provider.shutdown()


def _payload(exporter, as_json: bool = False) -> tuple[bytes, str]:
    req = encode_spans(exporter.get_finished_spans())
    if not as_json:
        return req.SerializeToString(), "application/x-protobuf"
    data = json_format.MessageToDict(req)
    for rs in data["resourceSpans"]:  # OTLP/JSON: ids as hex, not protobuf-JSON base64
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        import base64
                        s[k] = base64.b64decode(s[k]).hex()
    return json.dumps(data).encode(), "application/json"


@pytest.mark.parametrize("as_json", [False, True])
def test_one_turn_maps_field_by_field(otel, as_json):
    tracer, exporter = otel
    want = agent_turn(tracer, 1, conversation="conv-1")
    spans, rejected = spans_of(decode_request(*_payload(exporter, as_json)))
    assert len(spans) == 4 and not rejected
    traces, bad = map_otel_trace(spans)
    assert not bad and len(traces) == 1
    t = traces[0]
    root = next(s for s in spans if s.operation == "invoke_agent")
    assert t.trace_id == f"{root.trace_id}-{root.span_id}"
    assert (t.conversation_id, t.agent_id, t.policy_id) == ("conv-1", "support-bot", "gpt-4o-mini-2024-07-18")
    assert t.user_message == want["user"] and EMAIL in t.user_message
    assert t.final_response == want["answer"]
    assert [(c.role, c.content) for c in t.context] == [
        ("system", "You are a support agent."), ("user", "Hi"), ("assistant", "Hello! How can I help?")]
    assert len(t.tool_calls) == 1
    call = t.tool_calls[0]
    assert (call.name, call.args, call.result, call.status) == (
        "lookup_order", {"order_id": 1001}, {"status": "shipping", "eta": "tomorrow"}, "ok")
    assert call.latency_ms is not None and call.latency_ms >= 0
    assert t.latency_ms == pytest.approx((root.end_ns - root.start_ns) / 1e6)
    assert t.metadata["usage"] == {"input_tokens": 130, "output_tokens": 21}
    assert t.metadata["provider"] == "openai" and t.metadata["service_name"] == "shop-agent"
    assert t.metadata["finish_reasons"] == ["tool_call", "stop"] and t.metadata["spans"] == 4


def test_failed_tool_span_becomes_a_tool_error(otel):
    tracer, exporter = otel
    agent_turn(tracer, 2, conversation="c", tool_fails=True)
    traces, _ = map_otel_trace(spans_of(decode_request(*_payload(exporter)))[0])
    call = traces[0].tool_calls[0]
    assert call.error == "order service timed out" and call.status == "timeout"
    assert call.result == {"error": "order service timed out"}  # what the model was told, from its next input


def test_two_turns_in_one_otel_trace_make_two_traces(otel):
    tracer, exporter = otel
    with tracer.start_as_current_span("POST /chat"):  # an HTTP server span above both agent turns
        agent_turn(tracer, 3, conversation="c")
        agent_turn(tracer, 4, conversation="c")
    spans, _ = spans_of(decode_request(*_payload(exporter)))
    traces, bad = map_otel_trace(spans)
    assert not bad and sorted(t.final_response for t in traces) == ["Order 1003 ships tomorrow.",
                                                                     "Order 1004 ships tomorrow."]
    assert all(t.metadata["ignored_spans"] == 1 for t in traces)


def test_buffer_waits_for_the_root_then_releases_the_whole_turn(otel):
    tracer, exporter = otel
    agent_turn(tracer, 5, conversation="c")
    spans, _ = spans_of(decode_request(*_payload(exporter)))
    buf = TurnBuffer(settle_s=10)
    children = [s for s in spans if s.parent_id]
    assert buf.add(children, now=0) == [] and buf.held == 3
    assert buf.add(children[:1], now=1) == [] and buf.held == 3  # a re-sent span is held once
    done = buf.add([s for s in spans if not s.parent_id], now=2)
    assert len(done) == 1 and len(done[0]) == 4 and buf.held == 0
    assert buf.add(children, now=3) == [] and buf.settled(now=12) == [] and len(buf.settled(now=13)[0]) == 3
    buf.restore(done, now=20)  # a failed publish puts the turn back; a re-sent root does not release it twice
    assert buf.held == 4 and buf.add([s for s in spans if not s.parent_id], now=21) == []
    assert len(buf.settled(now=31)[0]) == 4 and buf.held == 0


def test_legacy_events_and_openllmetry_attributes_are_read(otel):
    tracer, exporter = otel
    with tracer.start_as_current_span("chat m") as s:
        s.set_attribute("gen_ai.operation.name", "chat")
        s.add_event("gen_ai.user.message", {"content": "old style question"})
        s.add_event("gen_ai.choice", {"message": json.dumps({"content": "old style answer"})})
    with tracer.start_as_current_span("openai.chat") as s:
        s.set_attributes({"gen_ai.system": "openai", "gen_ai.request.model": "m2",
                          "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "indexed question",
                          "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "indexed answer"})
    spans, _ = spans_of(decode_request(*_payload(exporter)))
    got = sorted((t.user_message, t.final_response) for s in spans for t in map_otel_trace([s])[0])
    assert got == [("indexed question", "indexed answer"), ("old style question", "old style answer")]
    assert [m.text for m in messages(spans[1], "input")] == ["indexed question"]


def test_unmappable_spans_come_back_with_reasons(otel):
    tracer, exporter = otel
    with tracer.start_as_current_span("GET /health"):
        pass
    with tracer.start_as_current_span("chat m") as s:  # GenAI, but no content recorded
        s.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})
    with tracer.start_as_current_span("chat m") as s:  # messages attribute that is not a message list
        s.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.input.messages": "42"})
    with tracer.start_as_current_span("invoke_agent a") as s:  # an id over the contract's 128 chars
        s.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "x" * 500,
                          "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                              {"type": "text", "content": "q"}]}])})
    spans, _ = spans_of(decode_request(*_payload(exporter)))
    results = [map_otel_trace([s]) for s in spans]
    assert all(not traces for traces, _ in results)
    reasons = [bad[0].reason for _, bad in results]
    assert reasons == ["unmappable", "unmappable", "unmappable", "validation_error"]
    assert "not a GenAI span" in results[0][1][0].error and "content capture" in results[1][1][0].error
    assert "conversation_id" in results[3][1][0].error


@pytest.mark.parametrize("body,ctype,fragment", [
    (b"\x00\xffnot protobuf", "application/x-protobuf", "does not decode"),
    (b"{not json", "application/json", "not JSON"),
    (b"[1, 2]", "application/json", "JSON object"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json", "not hex"),
    (b'{"resourceSpans": 7}', "application/json", "ExportTraceServiceRequest"),
    (b"{}", "text/plain", "unsupported Content-Type"),
])
def test_malformed_payloads_are_one_line_errors(body, ctype, fragment):
    with pytest.raises(PayloadError, match=fragment):
        decode_request(body, ctype)


def test_spans_with_bad_ids_or_absurd_attributes_are_rejected_alone():
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "ok", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        {"traceId": "00" * 16, "spanId": "cd" * 8, "name": "zero trace id"},
        {"traceId": "ab" * 16, "spanId": "ef" * 8, "name": "backwards", "startTimeUnixNano": "5",
         "endTimeUnixNano": "2"},
        {"traceId": "ab" * 16, "spanId": "12" * 8, "name": "huge", "attributes": [
            {"key": "gen_ai.input.messages", "value": {"stringValue": "x" * 1_000_001}}]},
    ]}]}]}
    spans, rejected = spans_of(decode_request(json.dumps(body).encode(), "application/json"))
    assert [s.name for s in spans] == ["ok"]
    assert [(r.span.name, r.reason) for r in rejected] == [
        ("zero trace id", "validation_error"), ("backwards", "validation_error"), ("huge", "too_large")]
