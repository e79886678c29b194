"""Rows of a replay's own tables (``records``, the ledger; ``dlq``), the content hash over the ledger, and a
``JudgedTrace`` rebuilt from a ``traces`` row (for curation and the diff: the row holds the whole scrubbed trace)."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable

from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, PiiFinding, SourceRef, Verdict
from streams.scrub.strict import strict_text


def value_hash(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def ledger_row(record: Record, digest: str, status: str, trace: Trace | None = None) -> dict[str, Any]:
    """The ledger row of one record read: where it was, its value's hash, what became of it."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset,
            "timestamp_ms": record.timestamp_ms, "value_sha256": digest, "status": status,
            "trace_id": trace.trace_id if trace is not None else None,
            "conversation_id": trace.conversation_id if trace is not None else None}


def dlq_row(dead: DeadLetter, digest: str) -> dict[str, Any]:
    """A replay dead letter without the raw bytes (they stay in the raw zone, on the topic), its error text
    strictly scrubbed (a validation error may quote the input)."""
    return {"topic": dead.topic, "partition": dead.partition, "offset": dead.offset, "stage": dead.stage,
            "reason": dead.reason, "error": strict_text(dead.error), "size_bytes": dead.size_bytes,
            "value_sha256": digest, "failed_at": dead.failed_at}


def content_hash(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 over (topic, partition, offset, value sha256) of every record in the window (the ledger rows not
    filtered out by time), in (topic, partition, offset) order: the same window of the same bytes gives the same
    hash, however many runs and crashes it took."""
    h = hashlib.sha256()
    keys = sorted((r["topic"], r["partition"], r["offset"], r["value_sha256"]) for r in rows
                  if r["status"] != "filtered")
    for topic, partition, offset, digest in keys:
        h.update(f"{topic}\x00{partition}\x00{offset}\x00{digest}\n".encode())
    return h.hexdigest()


def judged_from_row(row: dict[str, Any]) -> JudgedTrace:
    """The judged trace a ``traces`` row was made from (``streams.encoding.to_row`` inverted)."""
    loads = json.loads
    trace = Trace.model_validate({
        "trace_id": row["trace_id"], "conversation_id": row["conversation_id"], "agent_id": row["agent_id"],
        "policy_id": row["policy_id"], "adapter_hash": row.get("adapter_hash"), "timestamp": row["ts"],
        "user_message": row.get("user_message") or "", "context": loads(row.get("context_json") or "[]"),
        "tool_calls": loads(row.get("tool_calls_json") or "[]"), "final_response": row.get("final_response") or "",
        "latency_ms": row.get("latency_ms") or 0.0, "flags": row.get("flags") or [],
        "candidates": loads(row.get("candidates_json") or "[]"), "metadata": loads(row.get("metadata_json") or "{}")})
    verdicts = [Verdict.model_validate(v) for v in loads(row.get("verdicts_json") or "[]")]
    pii = [PiiFinding.model_validate(p) for p in loads(row.get("pii_json") or "[]")]
    source = SourceRef(topic=row["src_topic"], partition=row["src_partition"], offset=row["src_offset"])
    return JudgedTrace(trace=trace, verdicts=verdicts, outcome=row.get("outcome") or "pass", pii=pii, source=source,
                       processed_at=row.get("processed_at") or datetime.now(timezone.utc))
