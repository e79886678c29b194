"""The rules OpenAI documents for fine-tuning files, checked per line: roles, message order, tool call structure,
weights (SFT); input / preferred / non-preferred outputs (DPO); messages ending on the user turn (RFT). Every line
``alignloop export`` writes passes; the tests check that, and that each rule catches its violation."""
from __future__ import annotations

import json
import re
from typing import Any

ROLES = {"system", "developer", "user", "assistant", "tool"}
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _messages(msgs: Any, where: str) -> list[str]:
    errs: list[str] = []
    if not isinstance(msgs, list) or not msgs:
        return [f"{where}: messages must be a non-empty list"]
    open_calls: set[str] = set()
    for i, m in enumerate(msgs):
        at = f"{where}[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            errs.append(f"{at}: role must be one of {sorted(ROLES)}")
            continue
        role = m["role"]
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1)):
            errs.append(f"{at}: weight is only for assistant messages and must be 0 or 1")
        if role == "assistant" and m.get("tool_calls"):
            for tc in m["tool_calls"]:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(tc, dict) or tc.get("type") != "function" or not tc.get("id") or not isinstance(fn, dict):
                    errs.append(f"{at}: a tool call needs id, type 'function' and function")
                    continue
                if not FUNCTION_NAME.match(str(fn.get("name", ""))):
                    errs.append(f"{at}: function name {fn.get('name')!r} must match {FUNCTION_NAME.pattern}")
                try:
                    json.loads(fn.get("arguments"))
                except (TypeError, json.JSONDecodeError):
                    errs.append(f"{at}: function.arguments must be a JSON string")
                open_calls.add(tc["id"])
        elif role == "tool":
            if m.get("tool_call_id") not in open_calls:
                errs.append(f"{at}: a tool message must answer an earlier tool call's id")
            open_calls.discard(m.get("tool_call_id"))
            if not isinstance(m.get("content"), str):
                errs.append(f"{at}: tool content must be a string")
        elif not isinstance(m.get("content"), str):
            errs.append(f"{at}: content must be a string")
        if role in ("system", "developer") and i > 0 and msgs[i - 1].get("role") not in ("system", "developer"):
            errs.append(f"{at}: system messages come first")
    if open_calls:
        errs.append(f"{where}: tool calls without a tool message: {sorted(open_calls)}")
    return errs


def _tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        return ["tools must be a list"]
    errs = []
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or t.get("type") != "function" or not FUNCTION_NAME.match(str(fn.get("name", ""))):
            errs.append(f"tools: {t!r:.80} is not a function tool with a valid name")
        elif not isinstance(fn.get("parameters", {}), dict):
            errs.append(f"tools: {fn['name']}.parameters must be a JSON Schema object")
    return errs


def check_sft(line: dict[str, Any]) -> list[str]:
    msgs = line.get("messages")
    errs = _messages(msgs, "messages") + _tools(line.get("tools"))
    if isinstance(msgs, list) and msgs:
        if msgs[-1].get("role") != "assistant":
            errs.append("messages: the last message must be the assistant's")
        if not any(m.get("role") == "assistant" and m.get("weight", 1) == 1 for m in msgs):
            errs.append("messages: at least one assistant message must be trained on (weight 1)")
    return errs


def check_dpo(line: dict[str, Any]) -> list[str]:
    inp = line.get("input")
    if not isinstance(inp, dict):
        return ["input must be an object with messages"]
    errs = _messages(inp.get("messages"), "input.messages") + _tools(inp.get("tools"))
    if isinstance(inp.get("messages"), list) and inp["messages"] and inp["messages"][-1].get("role") != "user":
        errs.append("input.messages: must end on the user turn")
    for key in ("preferred_output", "non_preferred_output"):
        out = line.get(key)
        if not isinstance(out, list) or len(out) != 1 or out[0].get("role") != "assistant" or \
                not isinstance(out[0].get("content"), str):
            errs.append(f"{key}: must be one assistant message with string content")
    if not errs and line["preferred_output"][0]["content"] == line["non_preferred_output"][0]["content"]:
        errs.append("preferred and non-preferred outputs are identical")
    return errs


def check_rft(line: dict[str, Any]) -> list[str]:
    msgs = line.get("messages")
    errs = _messages(msgs, "messages") + _tools(line.get("tools"))
    if isinstance(msgs, list) and msgs and msgs[-1].get("role") != "user":
        errs.append("messages: an RFT item must end on the user turn (the model writes the answer)")
    if any(isinstance(m, dict) and "weight" in m for m in msgs or []):
        errs.append("messages: weight is not part of the RFT format")
    return errs


CHECKS = {"openai-sft": check_sft, "openai-dpo": check_dpo, "openai-rft": check_rft}
