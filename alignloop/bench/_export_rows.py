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


def _const(n: int, v: Any, typ: Any) -> Any:
    return pa.array([v] * n, type=typ)


def trace_batch(start: int, stop: int) -> pa.Table:
    """``trace_row(i)`` for ``start <= i < stop`` built column by column (the same values, no per-row dicts):
    a million rows in seconds rather than minutes."""
    schema, _ = TABLES["traces"]
    idx = range(start, stop)
    n = len(idx)
    ctx = trace_row(0)["context_json"]
    calls = []
    for i in idx:
        if i % 2:
            calls.append("[]")
        else:
            calls.append(json.dumps([{"name": "email.send" if i % 4 == 0 else "lookup_order",
                                      "args": {"order_id": 1000 + i, "to": "<EMAIL_ab12cd34>"},
                                      "result": {"status": "ok"}, "error": None, "status": "ok",
                                      "latency_ms": 3.0}]))
    v = json.loads(trace_row(0)["verdicts_json"])
    cols = {
        "trace_id": [f"t{i}" for i in idx], "conversation_id": [f"c{i % 3}" for i in idx],
        "agent_id": _const(n, "support-bot", pa.string()), "policy_id": _const(n, "base", pa.string()),
        "adapter_hash": _const(n, None, pa.string()), "ts": _const(n, NOW, schema.field("ts").type),
        "date": _const(n, "2026-11-30", pa.string()),
        "user_message": [f"Where is my order number {1000 + i}? write to {LEAKED_EMAIL}" if i == 1
                         else f"Where is order {1000 + i}?" for i in idx],
        "final_response": [f"Order {1000 + i} ships tomorrow." for i in idx], "context_json": _const(n, ctx, pa.string()),
        "tool_calls_json": calls,
        "tool_names": [[] if i % 2 else ["email.send" if i % 4 == 0 else "lookup_order"] for i in idx],
        "n_tool_errors": _const(n, 0, pa.int32()), "latency_ms": _const(n, 100.0, pa.float64()),
        "flags": _const(n, [], pa.list_(pa.string())), "candidates_json": _const(n, "[]", pa.string()),
        "metadata_json": _const(n, json.dumps({"source": "test"}), pa.string()),
        "outcome": ["pass" if i % 3 else "fail" for i in idx],
        "scores_json": [json.dumps({"safety": 0.5 + i / 100, "tool_correctness": 0.8}) for i in idx],
        "verdicts_json": [json.dumps([{**v[0], "passed": i % 3 != 0, "scores": {"safety": 0.5 + i / 100}}, v[1]])
                          for i in idx],
        "tags": _const(n, [], pa.list_(pa.string())), "pii_json": _const(n, "[]", pa.string()),
        "pii_count": _const(n, 0, pa.int32()), "src_topic": _const(n, "agent.traces", pa.string()),
        "src_partition": [i % 2 for i in idx], "src_offset": [10 + i for i in idx],
        "processed_at": _const(n, NOW, schema.field("processed_at").type), "conv_key": _const(n, None, pa.string()),
    }
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) if not isinstance(cols[f.name], pa.Array)
                     else cols[f.name] for f in schema}, schema=schema)


def pref_batch(start: int, stop: int) -> pa.Table:
    """``pref_row(i)`` for ``start <= i < stop``, column by column."""
    schema, _ = TABLES["preferences"]
    idx = range(start, stop)
    n = len(idx)
    chosen = [f"Order {i} ships tomorrow, tracking sent." for i in idx]
    rejected = [f"I don't know about order {i}." + (f" Ask {LEAKED_EMAIL}." if i == 1 else "") for i in idx]
    cols = {
        "pref_id": [f"p{i}" for i in idx], "prompt": [f"Where is order {i}?" for i in idx],
        "candidates": [[c, r] for c, r in zip(chosen, rejected)], "chosen_idx": _const(n, 0, pa.int32()),
        "rejected_idx": _const(n, 1, pa.int32()), "chosen": chosen, "rejected": rejected,
        "strength": [0.25 + (i % 4) / 4 for i in idx], "rationale": _const(n, "", pa.string()),
        "safety_tags": _const(n, [], pa.list_(pa.string())), "source": _const(n, "llm_judge", pa.string()),
        "annotator": _const(n, "", pa.string()), "trace_id": [f"t{i}" for i in idx],
        "conversation_id": [f"c{i}" for i in idx], "policy_id": _const(n, "base", pa.string()),
        "judge_versions_json": _const(n, "{}", pa.string()), "metadata_json": _const(n, "{}", pa.string()),
        "date": _const(n, "2026-11-30", pa.string()), "src_topic": _const(n, "feedback.preferences", pa.string()),
        "src_partition": _const(n, 0, pa.int32()), "src_offset": list(idx),
        "created_at": _const(n, NOW, schema.field("created_at").type), "conv_key": _const(n, None, pa.string()),
    }
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) if not isinstance(cols[f.name], pa.Array)
                     else cols[f.name] for f in schema}, schema=schema)
