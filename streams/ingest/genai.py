"""OpenTelemetry GenAI semantic-convention spans -> Trace records, one per agent turn (pure; no I/O).

A turn is an ``invoke_agent`` span with every span below it (model calls, ``execute_tool`` spans, anything in
between); GenAI spans of an OTel trace that sit under no ``invoke_agent`` span make one turn together. Messages are
read from the current conventions (``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
``gen_ai.system_instructions`` as JSON attributes or on the ``gen_ai.client.inference.operation.details`` event),
from the older per-message events (``gen_ai.user.message``, ``gen_ai.choice`` ...) and from OpenLLMetry's indexed
``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes. The field-by-field mapping is in docs/integrations.md.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from schemas.dlq import validation_detail
from schemas.trace import Trace
from streams.ingest.otlp import Rejected, Span

MODEL_OPS = {"chat", "text_completion", "generate_content"}
LEGACY_ROLE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                      "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(\w+)$")


@dataclass
class Message:
    role: str
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)      # {id, name, arguments}
    tool_responses: list[dict[str, Any]] = field(default_factory=list)  # {id, response}


def decode_json_text(v: Any) -> Any:
    """A JSON document given as a string, decoded; anything else (or text that is not JSON) as it is."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def _message(raw: Any, default_role: str = "user") -> Message:
    if isinstance(raw, str):
        return Message(default_role, raw)
    if not isinstance(raw, dict):
        raise ValueError(f"a message must be an object, got {type(raw).__name__}")
    msg = Message(str(raw.get("role") or default_role))
    texts: list[str] = []
    parts = raw.get("parts")
    if isinstance(parts, list):
        for p in parts:
            if not isinstance(p, dict):
                continue
            kind = p.get("type")
            if kind == "text" and isinstance(p.get("content"), str):
                texts.append(p["content"])
            elif kind == "tool_call":
                msg.tool_calls.append({"id": p.get("id"), "name": p.get("name"), "arguments": decode_json_text(p.get("arguments"))})
            elif kind == "tool_call_response":
                msg.tool_responses.append({"id": p.get("id"), "response": decode_json_text(p.get("response"))})
    content = raw.get("content")  # the older event bodies and OpenLLMetry carry plain content
    if isinstance(content, str):
        texts.append(content)
    for tc in raw.get("tool_calls") or []:
        if isinstance(tc, dict):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else tc
            msg.tool_calls.append({"id": tc.get("id"), "name": fn.get("name"), "arguments": decode_json_text(fn.get("arguments"))})
    if msg.role == "tool" and raw.get("id") and isinstance(content, str):
        msg.tool_responses.append({"id": raw["id"], "response": decode_json_text(content)})
    msg.text = "\n".join(t for t in texts if t)
    return msg


def _message_list(v: Any, what: str, default_role: str) -> list[Message]:
    v = decode_json_text(v)
    if isinstance(v, dict):
        v = [v]
    if not isinstance(v, list):
        raise ValueError(f"{what} must be a JSON array of messages")
    return [_message(m, default_role) for m in v]


def messages(span: Span, direction: str) -> list[Message]:
    """The span's input (system instructions first) or output messages; [] when it records none. Parsed once per
    span: a turn reads each model call's messages several times (history, tool results, the answer)."""
    if direction not in span.memo:
        span.memo[direction] = _parse_messages(span, direction)
    return span.memo[direction]


def _parse_messages(span: Span, direction: str) -> list[Message]:
    key = f"gen_ai.{direction}.messages"
    attrs = dict(span.attributes)
    for name, _, ev in span.events:
        if name == "gen_ai.client.inference.operation.details":
            attrs = {**ev, **attrs}
    out: list[Message] = []
    if direction == "input" and "gen_ai.system_instructions" in attrs:
        sys_parts = decode_json_text(attrs["gen_ai.system_instructions"])
        sys_parts = sys_parts if isinstance(sys_parts, list) else [{"type": "text", "content": str(sys_parts)}]
        out.append(_message({"role": "system", "parts": sys_parts}))
    if key in attrs:
        return out + _message_list(attrs[key], key, "user" if direction == "input" else "assistant")
    legacy: list[Message] = []
    for name, _, ev in span.events:  # the per-message events of semconv <= 1.36
        if direction == "input" and name in LEGACY_ROLE_EVENTS:
            body = decode_json_text(ev.get("body", ev))
            legacy.append(_message(body if isinstance(body, dict) else {"content": body}, LEGACY_ROLE_EVENTS[name]))
        elif direction == "output" and name == "gen_ai.choice":
            body = decode_json_text(ev.get("body", ev))
            body = decode_json_text(body.get("message", body)) if isinstance(body, dict) else {"content": body}
            legacy.append(_message(body, "assistant"))
    if legacy:
        return out + legacy
    return out + _indexed(attrs, "prompt" if direction == "input" else "completion")


def _indexed(attrs: dict[str, Any], which: str) -> list[Message]:
    rows: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        m = _INDEXED.match(k)
        if m and m.group(1) == which:
            rows.setdefault(int(m.group(2)), {})[m.group(3)] = v
    return [_message(rows[i], "user" if which == "prompt" else "assistant") for i in sorted(rows)]


def _attr(spans: list[Span], *keys: str) -> Any:
    for s in spans:
        for k in keys:
            v = s.attributes.get(k)
            if v not in (None, ""):
                return v
    return None


def _dict_args(v: Any) -> dict[str, Any]:
    v = decode_json_text(v)
    if v is None:
        return {}
    return v if isinstance(v, dict) else {"value": v}


def _tool_calls(tools: list[Span], model_msgs: list[Message]) -> list[dict[str, Any]]:
    requested = {tc["id"]: tc for m in model_msgs for tc in m.tool_calls if tc.get("id")}
    answered = {tr["id"]: tr["response"] for m in model_msgs for tr in m.tool_responses if tr.get("id")}
    out = []
    if tools:
        for s in tools:
            cid = s.attributes.get("gen_ai.tool.call.id")
            req = requested.get(cid, {})
            name = s.attributes.get("gen_ai.tool.name") or req.get("name") or s.name.removeprefix("execute_tool ").strip()
            args = s.attributes.get("gen_ai.tool.call.arguments", req.get("arguments"))
            result = decode_json_text(s.attributes["gen_ai.tool.call.result"]) if "gen_ai.tool.call.result" in s.attributes \
                else answered.get(cid)
            error = None
            if s.status_code == 2:
                error = s.status_message or str(s.attributes.get("error.type") or "tool call failed")
            out.append({"name": str(name or "tool"), "args": _dict_args(args), "result": result, "error": error,
                        "latency_ms": (s.end_ns - s.start_ns) / 1e6})
        return out
    for cid, tc in requested.items():  # no execute_tool spans: the model's requests, answered in later inputs
        out.append({"name": str(tc.get("name") or "tool"), "args": _dict_args(tc.get("arguments")),
                    "result": answered.get(cid)})
    return out


def _ts(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def turn_to_trace(root: Span | None, group: list[Span], ignored: int) -> dict[str, Any]:
    """The Trace fields of one turn (``root``: its invoke_agent span, None for GenAI spans under no agent span).
    Raises ValueError when the turn has neither a user message nor a response."""
    group = sorted(group, key=lambda s: s.start_ns)
    calls = [s for s in group if s.operation in MODEL_OPS]
    tools = [s for s in group if s.operation == "execute_tool"]
    head = [root] if root is not None else []
    inputs = (messages(root, "input") if root is not None else []) or (messages(calls[0], "input") if calls else [])
    outputs = (messages(root, "output") if root is not None else []) or (messages(calls[-1], "output") if calls else [])
    users = [i for i, m in enumerate(inputs) if m.role == "user"]
    if not users and not any(m.text for m in outputs):
        raise ValueError("no user message and no model output in the turn: record gen_ai.input.messages / "
                         "gen_ai.output.messages (content capture on) or the gen_ai.* message events")
    last_user = users[-1] if users else len(inputs)
    context = [{"role": m.role, "content": m.text} for m in inputs[:last_user] if m.text]
    model_msgs = [m for s in calls for m in messages(s, "input") + messages(s, "output")]
    start = min(s.start_ns for s in group)
    end = max(s.end_ns for s in group)
    if root is not None:
        start, end = root.start_ns, root.end_ns
    anchor = root or group[0]
    usage = {k: sum(int(s.attributes.get(f"gen_ai.usage.{k}") or 0) for s in calls)
             for k in ("input_tokens", "output_tokens")}
    models = sorted({str(m) for s in calls for m in [s.attributes.get("gen_ai.response.model")
                                                     or s.attributes.get("gen_ai.request.model")] if m})
    finish = [r for s in calls for r in (s.attributes.get("gen_ai.response.finish_reasons") or [])]
    last_model = _attr(list(reversed(calls)) + head, "gen_ai.response.model", "gen_ai.request.model")
    return {
        "trace_id": f"{anchor.trace_id}-{anchor.span_id}",
        "conversation_id": str(_attr(head + group, "gen_ai.conversation.id") or f"otel-{anchor.trace_id}"),
        "agent_id": str(_attr(head + group, "gen_ai.agent.name", "gen_ai.agent.id")
                        or anchor.resource.get("service.name") or "default")[:128],
        "policy_id": str(_attr(head + group, "alignloop.policy_id") or last_model or "base"),
        "adapter_hash": _attr(head + group, "alignloop.adapter_hash"),
        "timestamp": _ts(start),
        "user_message": inputs[last_user].text if users else "",
        "context": context,
        "tool_calls": _tool_calls(tools, model_msgs),
        "final_response": "\n".join(m.text for m in outputs if m.text),
        "latency_ms": (end - start) / 1e6,
        "flags": ["otel_status_error"] if any(s.status_code == 2 for s in head + calls) else [],
        "metadata": {"source": "otlp", "otel_trace_id": anchor.trace_id, "otel_span_id": anchor.span_id,
                     "provider": _attr(head + group, "gen_ai.provider.name", "gen_ai.system"),
                     "models": models, "usage": usage, "finish_reasons": finish,
                     "service_name": anchor.resource.get("service.name"), "spans": len(group),
                     "ignored_spans": ignored},
    }


def _agent_of(span: Span, by_id: dict[str, Span]) -> Span | None:
    """The nearest invoke_agent span at or above ``span`` (through non-GenAI spans too)."""
    seen: set[str] = set()
    cur: Span | None = span
    while cur is not None and cur.span_id not in seen:
        if cur.operation == "invoke_agent":
            return cur
        seen.add(cur.span_id)
        cur = by_id.get(cur.parent_id)
    return None


def map_otel_trace(spans: list[Span]) -> tuple[list[Trace], list[Rejected]]:
    """Every turn of one OTel trace's spans as a validated Trace; turns that cannot be mapped, and a trace with no
    GenAI span at all, come back as rejected (one entry per span, the reason and the error)."""
    by_id = {s.span_id: s for s in spans}
    genai = [s for s in spans if s.genai]
    if not genai:
        return [], [Rejected(s, "unmappable", "not a GenAI span (no gen_ai.* attribute or event), and no GenAI span "
                                              "in its OTel trace") for s in spans]
    groups: dict[str | None, list[Span]] = {}
    for s in genai:
        agent = _agent_of(s, by_id)
        groups.setdefault(agent.span_id if agent else None, []).append(s)
    ignored = len(spans) - len(genai)
    traces: list[Trace] = []
    rejected: list[Rejected] = []
    for agent_id, group in groups.items():
        root = by_id[agent_id] if agent_id else None
        try:
            fields = turn_to_trace(root, group, ignored)
            traces.append(Trace.model_validate(fields))
        except ValidationError as exc:
            rejected += [Rejected(s, "validation_error", f"turn does not make a valid Trace: {validation_detail(exc)}")
                         for s in group]
        except (ValueError, TypeError) as exc:
            rejected += [Rejected(s, "unmappable", str(exc)) for s in group]
    return traces, rejected
