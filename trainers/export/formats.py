"""The JSONL and datasets exporters: TRL (SFT, preference), Hugging Face ``datasets``, OpenAI fine-tuning
(SFT, DPO, RFT). Each renders rows the way its consumer documents; docs/integrations.md shows one record of each."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainers.export.base import (Conversation, Exporter, Rescrub, cleaners, conversation, safe_function_name,
                                  tool_text)

CONVERSATIONAL = ("traces", "sft_examples")


def _head(c: Conversation) -> list[dict[str, Any]]:
    msgs = [{"role": "system", "content": c.system}] if c.system else []
    msgs += [{"role": r, "content": t} for r, t in c.history]
    return msgs + [{"role": "user", "content": c.user}]


def trl_messages(c: Conversation) -> list[dict[str, Any]]:
    """TRL / transformers chat-template messages: tool calls with dict arguments, tool turns by name."""
    msgs = _head(c)
    if c.tools_used:
        msgs.append({"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": t.name, "arguments": t.args}} for t in c.tools_used]})
        msgs += [{"role": "tool", "name": t.name, "content": tool_text(t.error or t.result)} for t in c.tools_used]
    return msgs + [{"role": "assistant", "content": c.answer}]


def openai_messages(c: Conversation, *, final: bool = True, weights: bool = True) -> list[dict[str, Any]]:
    """OpenAI chat messages: tool calls with ids and JSON-string arguments, tool messages by tool_call_id.
    ``weights``: history assistant turns get weight 0, so only this turn's answers are trained on."""
    msgs = _head(c)
    if weights:
        for m in msgs:
            if m["role"] == "assistant":
                m["weight"] = 0
    if c.tools_used and final:
        ids = [f"call_{i}" for i in range(len(c.tools_used))]
        msgs.append({"role": "assistant", "tool_calls": [
            {"id": i, "type": "function", "function": {"name": safe_function_name(t.name),
                                                      "arguments": json.dumps(t.args, sort_keys=True)}}
            for i, t in zip(ids, c.tools_used)]} | ({"weight": 1} if weights else {}))
        msgs += [{"role": "tool", "tool_call_id": i, "content": tool_text(t.error or t.result)}
                 for i, t in zip(ids, c.tools_used)]
    if final:
        msgs.append({"role": "assistant", "content": c.answer} | ({"weight": 1} if weights else {}))
    return msgs


def openai_tools(c: Conversation) -> list[dict[str, Any]]:
    out = []
    for t in c.tool_schemas:
        fn = dict(t["function"])
        fn["name"] = safe_function_name(str(fn.get("name", "tool")))
        fn.setdefault("parameters", {"type": "object", "properties": {}})
        out.append({"type": "function", "function": fn})
    return out


def _typed(m: dict[str, Any]) -> dict[str, Any]:
    """One message with the same columns as every other (Arrow needs one struct type)."""
    return {"role": m["role"], "content": m.get("content") or "", "name": m.get("name"),
            "tool_calls": [{"type": "function", "function": {"name": c["function"]["name"], "arguments": json.dumps(
                c["function"]["arguments"], sort_keys=True)}} for c in m.get("tool_calls") or []]}


class TrlSft(Exporter):
    """TRL ``SFTTrainer`` conversational format: ``messages``, plus ``tools`` (JSON schemas) when tools were used."""

    name = "trl-sft"
    tables = CONVERSATIONAL

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in self.primed(rows):
            c = conversation(r, self.rescrub)
            rec: dict[str, Any] = {"messages": trl_messages(c)}
            if c.tool_schemas:
                rec["tools"] = c.tool_schemas
            out.append(rec)
        return out


def preference_record(r: dict[str, Any], rescrub: "bool | Rescrub" = True) -> dict[str, Any]:
    clean = cleaners(rescrub)[0] if rescrub else str
    return {"prompt": clean(r["prompt"]), "chosen": clean(r["chosen"]),
            "rejected": clean(r["rejected"]), "margin": float(r["strength"] if r.get("strength") is not None
                                                                     else 1.0)}


class TrlPreference(Exporter):
    """TRL's standard preference format (``DPOTrainer``, ``RewardTrainer``): prompt / chosen / rejected, and
    ``margin`` = the preference's strength (RewardTrainer reads it as the margin of its loss)."""

    name = "trl-preference"
    tables = ("preferences",)

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [preference_record(r, self.rescrub) for r in self.primed(rows)]


class HfDataset(Exporter):
    """A ``datasets.DatasetDict`` (split ``train``) saved with ``save_to_disk``: the trl-sft records for
    conversational tables, the trl-preference records for preferences. ``push_to_hub`` is one call from there
    (docs/integrations.md)."""

    name = "hf"
    tables = CONVERSATIONAL + ("preferences",)
    directory = True

    def export(self, rows: list[dict[str, Any]], out: Path) -> list[Path]:
        from datasets import Dataset, DatasetDict

        if rows and "chosen" in rows[0]:
            records = TrlPreference.records(self, rows)
        else:
            # messages as typed rows; tool arguments and the tools' schemas as JSON text: they differ per tool,
            # and one Arrow column cannot hold every shape
            records = [{"messages": [_typed(m) for m in r["messages"]],
                        "tools": json.dumps(r.get("tools") or [], ensure_ascii=False)}
                       for r in TrlSft.records(self, rows)]
        DatasetDict({"train": Dataset.from_list(records)}).save_to_disk(str(out))
        return sorted(p for p in out.rglob("*") if p.is_file())


class OpenAISft(Exporter):
    """OpenAI supervised fine-tuning (chat format): ``messages`` ending on the assistant, ``tools`` when used,
    earlier assistant turns at ``weight`` 0."""

    name = "openai-sft"
    tables = CONVERSATIONAL

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in self.primed(rows):
            c = conversation(r, self.rescrub)
            rec: dict[str, Any] = {"messages": openai_messages(c)}
            if c.tool_schemas:
                rec["tools"] = openai_tools(c)
            out.append(rec)
        return out


class OpenAIDpo(Exporter):
    """OpenAI preference fine-tuning (DPO): ``input.messages``, ``preferred_output``, ``non_preferred_output``."""

    name = "openai-dpo"
    tables = ("preferences",)

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in self.primed(rows):
            p = preference_record(r, self.rescrub)
            out.append({"input": {"messages": [{"role": "user", "content": p["prompt"]}]},
                        "preferred_output": [{"role": "assistant", "content": p["chosen"]}],
                        "non_preferred_output": [{"role": "assistant", "content": p["rejected"]}]})
        return out


class OpenAIRft(Exporter):
    """OpenAI reinforcement fine-tuning: ``messages`` ending on the user turn, plus reference fields a grader reads
    as ``{{item.<field>}}``: ``reference_answer`` (the recorded answer), ``reference_tools`` (tools it called),
    ``reference_score`` (the judges' lowest score, when judged)."""

    name = "openai-rft"
    tables = CONVERSATIONAL

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in self.primed(rows):
            c = conversation(r, self.rescrub)
            rec: dict[str, Any] = {"messages": openai_messages(c, final=False, weights=False),
                                   "reference_answer": c.answer,
                                   "reference_tools": [safe_function_name(t.name) for t in c.tools_used]}
            scores = json.loads(r.get("scores_json") or "{}") if "scores_json" in r else {}
            if scores:
                rec["reference_score"] = min(scores.values())
            elif r.get("score") is not None:
                rec["reference_score"] = float(r["score"])
            if c.tool_schemas:
                rec["tools"] = openai_tools(c)
            out.append(rec)
        return out
