"""Rows of a replay's own tables (``records``, the ledger; ``dlq``), the content hash over the ledger, and a
``JudgedTrace`` rebuilt from a ``traces`` row (for curation and the diff: the row holds the whole scrubbed trace)."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable

from pydantic import TypeAdapter
from pydantic_core import to_json

from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.trace import OWN_JSON, Trace
from schemas.verdict import JudgedTrace, PiiFinding, SourceRef, Verdict
from streams.scrub.strict import strict_text


# (Trace field, traces column holding its JSON, the JSON of an empty one)
_NESTED = (("context", "context_json", "[]"), ("tool_calls", "tool_calls_json", "[]"),
           ("candidates", "candidates_json", "[]"), ("metadata", "metadata_json", "{}"))


_PII_LIST = TypeAdapter(list[PiiFinding])


def value_hash(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def ledger_row(record: Record, digest: str, status: str, trace: Trace | None = None,
               reused: bool | None = None) -> dict[str, Any]:
    """The ledger row of one record read: where it was, its value's hash, what became of it (and, landed, whether
    from the live row's scrubbed text)."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset,
            "timestamp_ms": record.timestamp_ms, "value_sha256": digest, "status": status,
            "trace_id": trace.trace_id if trace is not None else None,
            "conversation_id": trace.conversation_id if trace is not None else None, "reused": reused}


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


def scrubbed_from_row(row: dict[str, Any]) -> tuple[Trace, list[PiiFinding]]:
    """The scrubbed trace and PII findings a ``traces`` row was made from (``streams.encoding.to_row`` inverted,
    the verdicts aside). The row keeps the nested fields as JSON: they are spliced with the scalar fields into one
    document that pydantic-core parses and validates in one pass (a third of the cost of ``json.loads`` of each
    field and ``model_validate`` of the dict, which a replay pays per reused row). Written by ``to_json`` from traces
    the spine validated, it needs no second non-finite check (``OWN_JSON``)."""
    head = to_json({"trace_id": row["trace_id"], "conversation_id": row["conversation_id"],
                    "agent_id": row["agent_id"], "policy_id": row["policy_id"], "adapter_hash": row.get("adapter_hash"),
                    "timestamp": row["ts"], "user_message": row.get("user_message") or "",
                    "final_response": row.get("final_response") or "", "latency_ms": row.get("latency_ms") or 0.0,
                    "flags": row.get("flags") or []})
    nested = [f',"{name}":{row.get(column) or empty}'.encode() for name, column, empty in _NESTED]
    trace = Trace.model_validate_json(b"".join([head[:-1], *nested, b"}"]), context=OWN_JSON)
    return trace, _PII_LIST.validate_json(row.get("pii_json") or "[]")


def judged_from_row(row: dict[str, Any]) -> JudgedTrace:
    """The judged trace a ``traces`` row was made from (``streams.encoding.to_row`` inverted)."""
    trace, pii = scrubbed_from_row(row)
    verdicts = [Verdict.model_validate(v) for v in json.loads(row.get("verdicts_json") or "[]")]
    source = SourceRef(topic=row["src_topic"], partition=row["src_partition"], offset=row["src_offset"],
                       value_sha256=row.get("src_sha256"))
    return JudgedTrace(trace=trace, verdicts=verdicts, outcome=row.get("outcome") or "pass", pii=pii, source=source,
                       processed_at=row.get("processed_at") or datetime.now(timezone.utc),
                       scrub_version=row.get("scrub_version"))
