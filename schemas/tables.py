"""Delta table schemas (Arrow) for everything the pipeline lands."""
from __future__ import annotations

import pyarrow as pa

TRACES_TABLE = "traces"

TRACES_SCHEMA = pa.schema([
    pa.field("trace_id", pa.string(), nullable=False),
    pa.field("conversation_id", pa.string(), nullable=False),
    pa.field("agent_id", pa.string(), nullable=False),
    pa.field("policy_id", pa.string(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("date", pa.string(), nullable=False),  # partition column, YYYY-MM-DD of ts
    pa.field("user_message", pa.string()),
    pa.field("final_response", pa.string()),
    pa.field("context_json", pa.string()),
    pa.field("tool_calls_json", pa.string()),
    pa.field("tool_names", pa.list_(pa.string())),
    pa.field("n_tool_errors", pa.int32()),
    pa.field("latency_ms", pa.float64()),
    pa.field("flags", pa.list_(pa.string())),
    pa.field("candidates_json", pa.string()),
    pa.field("metadata_json", pa.string()),
    pa.field("outcome", pa.string()),
    pa.field("scores_json", pa.string()),
    pa.field("verdicts_json", pa.string()),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("pii_json", pa.string()),
    pa.field("pii_count", pa.int32()),
    pa.field("src_topic", pa.string(), nullable=False),
    pa.field("src_partition", pa.int32(), nullable=False),
    pa.field("src_offset", pa.int64(), nullable=False),
    pa.field("processed_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

TABLES: dict[str, tuple[pa.Schema, list[str]]] = {
    TRACES_TABLE: (TRACES_SCHEMA, ["date"]),
}
