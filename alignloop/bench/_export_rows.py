"""Small scrubbed tables for the export bench and tests, with one raw value a scrubber missed planted in each."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from schemas.tables import TABLES

LEAKED_EMAIL = "missed.by.scrubber@export-leak.example"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def trace_row(i: int) -> dict[str, Any]:
    tools = i % 2 == 0
    calls = [{"name": "email.send" if i % 4 == 0 else "lookup_order", "args": {"order_id": 1000 + i, "to": "<EMAIL_ab12cd34>"},
              "result": {"status": "ok"}, "error": None, "status": "ok", "latency_ms": 3.0}] if tools else []
    verdicts = [{"judge": "policy", "judge_version": "2", "status": "ok", "passed": i % 3 != 0, "confidence": 0.9,
                 "scores": {"safety": 0.5 + i / 100}},
                {"judge": "tool-use", "judge_version": "1", "status": "ok", "passed": True, "confidence": 0.7,
                 "scores": {"tool_correctness": 0.8}}]
    user = f"Where is my order number {1000 + i}? write to {LEAKED_EMAIL}" if i == 1 else f"Where is order {1000 + i}?"
    return {
        "trace_id": f"t{i}", "conversation_id": f"c{i % 3}", "agent_id": "support-bot", "policy_id": "base",
        "adapter_hash": None, "ts": NOW, "date": "2026-11-30", "user_message": user,
        "final_response": f"Order {1000 + i} ships tomorrow.",
        "context_json": json.dumps([{"role": "system", "content": "You are a support agent."},
                                    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
                                    {"role": "memory", "content": "prefers email"}]),
        "tool_calls_json": json.dumps(calls), "tool_names": [c["name"] for c in calls], "n_tool_errors": 0,
        "latency_ms": 100.0, "flags": [], "candidates_json": "[]",
        "metadata_json": json.dumps({"source": "test"}), "outcome": "pass" if i % 3 else "fail",
        "scores_json": json.dumps({"safety": 0.5 + i / 100, "tool_correctness": 0.8}),
        "verdicts_json": json.dumps(verdicts), "tags": [], "pii_json": "[]", "pii_count": 0,
        "src_topic": "agent.traces", "src_partition": i % 2, "src_offset": 10 + i, "processed_at": NOW,
    }


def pref_row(i: int, source: str = "llm_judge") -> dict[str, Any]:
    chosen, rejected = f"Order {i} ships tomorrow, tracking sent.", f"I don't know about order {i}."
    if i == 1:
        rejected += f" Ask {LEAKED_EMAIL}."
    return {"pref_id": f"p{i}", "prompt": f"Where is order {i}?", "candidates": [chosen, rejected], "chosen_idx": 0,
            "rejected_idx": 1, "chosen": chosen, "rejected": rejected, "strength": 0.25 + (i % 4) / 4,
            "rationale": "", "safety_tags": [], "source": source, "annotator": "", "trace_id": f"t{i}",
            "conversation_id": f"c{i}", "policy_id": "base", "judge_versions_json": "{}", "metadata_json": "{}",
            "date": "2026-11-30", "src_topic": "feedback.preferences", "src_partition": 0, "src_offset": i,
            "created_at": NOW}


def sft_row(i: int) -> dict[str, Any]:
    return {"example_id": f"e{i}", "trace_id": f"t{i}", "conversation_id": f"c{i}", "policy_id": "base",
            "prompt": f"Where is order {i}?", "response": f"Order {i} ships tomorrow.", "domain": "support",
            "score": 0.9, "confidence": 0.8, "judge_versions_json": "{}", "date": "2026-11-30",
            "src_topic": "traces.judged", "src_partition": 0, "src_offset": i, "created_at": NOW}


def write_table(settings: Any, name: str, rows: list[dict[str, Any]], mode: str = "append") -> None:
    schema, parts = TABLES[name]
    write_deltalake(settings.table_uri(name), pa.Table.from_pylist(rows, schema=schema), mode=mode,
                    partition_by=parts or None)


def seed(settings: Any, n: int = 12, pref_source: str = "llm_judge") -> None:
    write_table(settings, "traces", [trace_row(i) for i in range(n)])
    write_table(settings, "preferences", [pref_row(i, pref_source) for i in range(n)])
    write_table(settings, "sft_examples", [sft_row(i) for i in range(n)])
