"""OpenAI chat-completions log lines -> Trace: field mapping, tool calls, and a reason for every bad line."""
from __future__ import annotations

import json

import pytest

from streams.ingest.openai_log import LineError, parse_line

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def log_line(i: int = 0, **over) -> dict:
    entry = {
        "timestamp": "2026-11-30T12:00:00Z", "workload_id": "weather-bot", "latency_ms": 840,
        "request": {"model": "gpt-4o-mini", "temperature": 0.2, "tools": TOOLS, "messages": [
            {"role": "system", "content": "You answer weather questions."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": f"Weather in Paris? ({i})"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"}]},
        "response": {"id": f"chatcmpl-{i}", "model": "gpt-4o-mini-2024-07-18", "created": 1764504000,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "21°C and sunny."}},
                                 {"index": 1, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "It is 21 degrees."}}],
                     "usage": {"prompt_tokens": 60, "completion_tokens": 8}},
    }
    entry.update(over)
    return entry


def parse(entry) -> object:
    return parse_line(json.dumps(entry).encode(), line=3, source="openai-log:x.jsonl")


def test_a_logged_call_maps_to_a_trace_with_its_tool_call():
    t = parse(log_line())
    assert (t.trace_id, t.agent_id, t.policy_id) == ("chatcmpl-0", "weather-bot", "gpt-4o-mini-2024-07-18")
    assert t.user_message == "Weather in Paris? (0)" and t.final_response == "21°C and sunny."
    assert [(c.role, c.content) for c in t.context] == [("system", "You answer weather questions."),
                                                         ("user", "hello"), ("assistant", "Hi!")]
    assert [(c.name, c.args, c.result) for c in t.tool_calls] == [("get_weather", {"city": "Paris"}, {"temp_c": 21})]
    assert t.candidates == ["It is 21 degrees."] and t.latency_ms == 840
    assert t.timestamp.isoformat() == "2026-11-30T12:00:00+00:00"
    assert t.metadata["tools"] == TOOLS and t.metadata["params"] == {"temperature": 0.2}
    assert t.metadata["usage"]["prompt_tokens"] == 60 and t.metadata["line"] == 3


def test_same_opening_means_same_conversation_and_an_explicit_id_wins():
    assert parse(log_line(1)).conversation_id == parse(log_line(2)).conversation_id
    assert parse(log_line(1, conversation_id="c-9")).conversation_id == "c-9"


def test_a_response_that_only_calls_a_tool_keeps_the_call_without_result():
    e = log_line()
    e["request"]["messages"] = e["request"]["messages"][:4]
    e["response"]["choices"] = [{"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]}}]
    t = parse(e)
    assert t.final_response == "" and [(c.name, c.args, c.result) for c in t.tool_calls] == [
        ("get_weather", {"city": "Rome"}, None)]


def test_batch_api_style_response_body_is_unwrapped():
    e = log_line()
    e["response"] = {"status_code": 200, "body": e["response"]}
    assert parse(e).final_response == "21°C and sunny."


@pytest.mark.parametrize("raw,reason", [
    (b"this is not json", "invalid_json"),
    (b"\xff\xfe{}", "invalid_utf8"),
    (b"[1, 2]", "not_an_object"),
    (b'{"request": {"messages": []}, "response": {}}', "unmappable"),
    (json.dumps({"request": {"messages": [{"role": "user", "content": "q"}]}}).encode(), "unmappable"),
    (json.dumps(log_line(timestamp="yesterday")).encode(), "validation_error"),
    (json.dumps(log_line(latency_ms=-5)).encode(), "validation_error"),
])
def test_bad_lines_get_a_reason(raw, reason):
    with pytest.raises(LineError) as exc:
        parse_line(raw, line=7, source="s")
    assert exc.value.reason == reason and str(exc.value)
