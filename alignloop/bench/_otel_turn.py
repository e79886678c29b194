"""An agent instrumented the way the OpenTelemetry GenAI conventions describe (for the ingest bench and tests): one
``invoke_agent`` span per turn, a ``chat`` span per model call, an ``execute_tool`` span per tool call, with the
messages recorded as ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (content capture on)."""
from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import Status, StatusCode, Tracer

EMAIL = "planted.person@otel-leak.example"
PHONE = "+1 (415) 555-0199"


def _msg(role: str, *parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": list(parts), **extra}


def text(s: str) -> dict[str, Any]:
    return {"type": "text", "content": s}


def agent_turn(tracer: Tracer, i: int, *, conversation: str, tool_fails: bool = False) -> dict[str, str]:
    """One turn: user asks, the model calls ``lookup_order``, the tool answers (or fails), the model answers.
    Returns what the mapped Trace should say."""
    user = f"Where is order {1000 + i}? Reach me at {EMAIL} or {PHONE}."
    answer = f"Order {1000 + i} ships tomorrow."
    call_id = f"call_{i}"
    with tracer.start_as_current_span("invoke_agent support-bot") as agent:
        agent.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
                              "gen_ai.agent.id": "agent-42", "gen_ai.conversation.id": conversation,
                              "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"})
        history = [_msg("user", text("Hi")), _msg("assistant", text("Hello! How can I help?")),
                   _msg("user", text(user))]
        sysi = json.dumps([text("You are a support agent.")])
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 12,
                "gen_ai.response.finish_reasons": ["tool_call"], "gen_ai.system_instructions": sysi,
                "gen_ai.input.messages": json.dumps(history),
                "gen_ai.output.messages": json.dumps([_msg("assistant", {
                    "type": "tool_call", "id": call_id, "name": "lookup_order",
                    "arguments": {"order_id": 1000 + i}}, finish_reason="tool_call")])})
        with tracer.start_as_current_span("execute_tool lookup_order") as tool:
            tool.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                                 "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function",
                                 "gen_ai.tool.call.arguments": json.dumps({"order_id": 1000 + i})})
            if tool_fails:
                tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
                tool.set_attribute("error.type", "TimeoutError")
            else:
                tool.set_attribute("gen_ai.tool.call.result", json.dumps({"status": "shipping", "eta": "tomorrow"}))
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 80, "gen_ai.usage.output_tokens": 9,
                "gen_ai.response.finish_reasons": ["stop"], "gen_ai.system_instructions": sysi,
                "gen_ai.input.messages": json.dumps(history + [
                    _msg("assistant", {"type": "tool_call", "id": call_id, "name": "lookup_order",
                                       "arguments": {"order_id": 1000 + i}}),
                    _msg("tool", {"type": "tool_call_response", "id": call_id,
                                  "response": {"error": "order service timed out"} if tool_fails
                                  else {"status": "shipping", "eta": "tomorrow"}})]),
                "gen_ai.output.messages": json.dumps([_msg("assistant", text(answer), finish_reason="stop")])})
        agent.set_attribute("gen_ai.output.messages", json.dumps([_msg("assistant", text(answer))]))
    return {"user": user, "answer": answer}
