"""OpenAI chat-completions request/response log lines -> Trace records (pure; no I/O).

One JSONL line is one call: ``{"request": {model, messages, tools, ...}, "response": {id, model, created, choices,
usage}}`` plus optional ``timestamp``, ``conversation_id``, ``agent_id`` / ``workload_id`` / ``client_id``,
``latency_ms`` and ``metadata`` (NVIDIA Data Flywheel's log records have this shape; so does a proxy that stores
request and response side by side). A Batch-API style ``response: {"body": {...}}`` is unwrapped. The mapping is
in docs/integrations.md.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from schemas.dlq import validation_detail, validation_reason
from schemas.trace import Trace
from streams.ingest.genai import decode_json_text


class LineError(ValueError):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason


def _text(content: Any) -> str:
    """A message's content as text (a string, or the text parts of a content array)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in
                         ("text", "input_text", "output_text") and isinstance(p.get("text"), str))
    return str(content)


def _args(v: Any) -> dict[str, Any]:
    v = decode_json_text(v)
    return {} if v is None else v if isinstance(v, dict) else {"value": v}


def _when(v: Any) -> datetime | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return datetime.fromtimestamp(v / 1000 if v > 1e11 else v, tz=timezone.utc)
    if isinstance(v, str) and v:
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise LineError("validation_error", f"timestamp {v[:40]!r} is not ISO 8601 or unix seconds") from None
    return None


def _calls(messages: list[dict[str, Any]], final: dict[str, Any]) -> list[dict[str, Any]]:
    """Tool calls of this turn: the assistant's tool_calls after the last user message (and in the response),
    each with the result of the tool message answering its id."""
    results = {m.get("tool_call_id"): m.get("content") for m in messages if m.get("role") == "tool"}
    out = []
    for m in messages + [final]:
        for tc in m.get("tool_calls") or []:
            if not isinstance(tc, dict):
                raise LineError("validation_error", "tool_calls entries must be objects")
            fn = tc.get("function") or {}
            if not isinstance(fn, dict) or not fn.get("name"):
                raise LineError("validation_error", "a tool call has no function.name")
            res = results.get(tc.get("id"))
            out.append({"name": str(fn["name"]), "args": _args(fn.get("arguments")),
                        "result": decode_json_text(res) if isinstance(res, str) else res})
    return out


def log_to_trace(entry: Any, *, line: int, source: str, default_agent: str | None = None) -> Trace:
    """The Trace of one log entry; a LineError (reason, one-line error) when it cannot be one."""
    if not isinstance(entry, dict):
        raise LineError("not_an_object", f"line {line} is JSON but not an object")
    req, resp = entry.get("request"), entry.get("response")
    if isinstance(resp, dict) and isinstance(resp.get("body"), dict):
        resp = resp["body"]
    if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or not req["messages"]:
        raise LineError("unmappable", "no request.messages: expected {\"request\": {\"messages\": [...]}, "
                                      "\"response\": {\"choices\": [...]}}")
    if not isinstance(resp, dict) or not isinstance(resp.get("choices"), list) or not resp["choices"]:
        raise LineError("unmappable", "no response.choices: log the chat-completions response next to the request")
    msgs = [m for m in req["messages"] if isinstance(m, dict)]
    choices = [c.get("message") or {} for c in resp["choices"] if isinstance(c, dict)]
    users = [i for i, m in enumerate(msgs) if m.get("role") == "user"]
    last = users[-1] if users else len(msgs)
    final = choices[0] if choices else {}
    meta = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
    first = next((_text(m.get("content")) for m in msgs if m.get("role") == "user"), "")
    system = next((_text(m.get("content")) for m in msgs if m.get("role") in ("system", "developer")), "")
    conv = (entry.get("conversation_id") or meta.get("conversation_id") or (req.get("metadata") or {}).get(
        "conversation_id") or "oai-" + hashlib.sha256(f"{system}\n{first}".encode()).hexdigest()[:24])
    latency = entry.get("latency_ms")
    if latency is None and entry.get("latency") is not None:
        latency = float(entry["latency"]) * 1000
    fields: dict[str, Any] = {
        "trace_id": str(entry.get("trace_id") or resp.get("id") or f"oai-{source}-{line}"),
        "conversation_id": str(conv),
        "agent_id": str(entry.get("agent_id") or entry.get("workload_id") or entry.get("client_id")
                        or default_agent or "default"),
        "policy_id": str(resp.get("model") or req.get("model") or "base"),
        "user_message": _text(msgs[last].get("content")) if users else "",
        "context": [{"role": str(m.get("role") or "context"), "content": _text(m.get("content"))}
                    for m in msgs[:last] if _text(m.get("content"))],
        "tool_calls": _calls(msgs[last + 1:], final),
        "final_response": _text(final.get("content")),
        "latency_ms": latency or 0.0,
        "candidates": [_text(c.get("content")) for c in choices[1:] if _text(c.get("content"))],
        "metadata": {**meta, "source": "openai-log", "log": source, "line": line, "usage": resp.get("usage"),
                     "finish_reason": (resp["choices"][0] or {}).get("finish_reason"),
                     "tools": req.get("tools") or [],
                     "params": {k: req[k] for k in ("temperature", "top_p", "max_tokens", "seed") if k in req},
                     **{k: entry[k] for k in ("workload_id", "client_id") if k in entry}},
    }
    when = _when(entry.get("timestamp")) or _when(resp.get("created"))
    if when is not None:
        fields["timestamp"] = when
    try:
        return Trace.model_validate(fields)
    except ValidationError as exc:
        raise LineError(validation_reason(exc), f"line {line}: {validation_detail(exc)}") from None


def parse_line(raw: bytes, *, line: int, source: str, default_agent: str | None = None) -> Trace:
    try:
        entry = json.loads(raw.decode("utf-8"))  # decoded first: json.loads(bytes) guesses UTF-16/32
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = "invalid_utf8" if isinstance(exc, UnicodeDecodeError) else "invalid_json"
        raise LineError(reason, f"line {line} is not JSON: {exc}") from None
    return log_to_trace(entry, line=line, source=source, default_agent=default_agent)
