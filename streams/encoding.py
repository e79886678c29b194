"""How a judged trace leaves the spine: its ``traces.judged`` event (JSON bytes) and its Delta ``traces`` row.

Plain serialisation (pydantic-core, in Rust) with the verdicts' parts worked out once per trace in a
``VerdictSummary`` for the row and the metrics (memoised by content: see ``summarize``).
"""
from __future__ import annotations

from typing import Any

from pydantic_core import to_json

from schemas.verdict import JudgedTrace, Verdict


def _dump(v: Any) -> str:
    """Compact JSON of models or plain values, as ``model_dump_json`` writes them; empties need no call."""
    if not v:
        return "[]" if isinstance(v, list) else "{}" if isinstance(v, dict) else to_json(v).decode()
    return to_json(v).decode()


class VerdictSummary:
    """What the row and the metrics need from a trace's verdicts: their JSON, the lowest score per dimension, the
    sorted tags, and each verdict's metric labels (judge, status, passed)."""

    __slots__ = ("json", "scores_json", "tags", "labels")

    def __init__(self, verdicts: list[Verdict]) -> None:
        scores: dict[str, float] = {}
        tags: set[str] = set()
        labels = []
        for v in verdicts:
            for dim, sc in v.scores.items():
                prev = scores.get(dim)
                if prev is None or sc < prev:
                    scores[dim] = sc
            if v.tags:
                tags.update(v.tags)
            labels.append((v.judge, v.status, v.passed))
        self.json = _dump(verdicts)
        self.scores_json = _dump(scores)
        self.tags = sorted(tags)
        self.labels = tuple(labels)


_SUMMARIES: dict[tuple, VerdictSummary] = {}
_SUMMARIES_MAX = 4096


def summarize(verdicts: list[Verdict]) -> VerdictSummary:
    """``VerdictSummary(verdicts)``, memoised by the verdicts' content (every field a summary is made of; bounded):
    fast judges hand out a few fixed verdicts, so most traces' verdict lists were summarised before, and the key
    costs about half the summary. Read-only: the row copies ``tags``."""
    key = tuple([(v.judge, v.judge_version, v.status, tuple(v.scores.items()), v.confidence, v.passed,
                  tuple(v.reasons), tuple(v.tags), v.error) for v in verdicts])
    got = _SUMMARIES.get(key)
    if got is None:
        if len(_SUMMARIES) >= _SUMMARIES_MAX:
            _SUMMARIES.clear()
        got = _SUMMARIES[key] = VerdictSummary(verdicts)
    return got


def encode_event(j: JudgedTrace) -> bytes:
    """The ``traces.judged`` event: ``j.model_dump_json()`` as bytes."""
    return to_json(j)


def to_row(j: JudgedTrace, summary: VerdictSummary | None = None) -> dict[str, Any]:
    """A `traces` table row (schemas.tables.TRACES_SCHEMA) from a judged trace and its verdicts' ``summarize``."""
    t = j.trace
    summary = summary or summarize(j.verdicts)
    calls = t.tool_calls
    return {
        "trace_id": t.trace_id, "conversation_id": t.conversation_id, "agent_id": t.agent_id,
        "policy_id": t.policy_id, "adapter_hash": t.adapter_hash, "ts": t.timestamp,
        "date": t.timestamp.date().isoformat(),
        "user_message": t.user_message, "final_response": t.final_response,
        "context_json": _dump(t.context), "tool_calls_json": _dump(calls),
        "tool_names": [c.name for c in calls],
        "n_tool_errors": sum(c.status != "ok" for c in calls),
        "latency_ms": t.latency_ms, "flags": t.flags, "candidates_json": _dump(t.candidates),
        "metadata_json": _dump(t.metadata), "outcome": j.outcome, "scores_json": summary.scores_json,
        "verdicts_json": summary.json, "tags": list(summary.tags),
        "pii_json": _dump(j.pii), "pii_count": sum(p.count for p in j.pii),
        "src_topic": j.source.topic, "src_partition": j.source.partition, "src_offset": j.source.offset,
        "processed_at": j.processed_at, "scrub_version": j.scrub_version, "src_sha256": j.source.value_sha256,
    }


def rejudged_row(row: dict[str, Any], j: JudgedTrace, summary: VerdictSummary | None = None) -> dict[str, Any]:
    """``to_row(j, summary)`` for a judged trace made from ``row``'s own scrubbed trace, PII findings and source (a
    replay judging a live row again): ``row`` with the columns that judging decides (``TRACES_JUDGING_COLUMNS``)
    and the scrub version replaced, the rest copied rather than serialised again."""
    summary = summary or summarize(j.verdicts)
    out = {k: v for k, v in row.items() if k != "conv_key"}  # the sink stamps the erasure key
    out.update(outcome=j.outcome, scores_json=summary.scores_json, verdicts_json=summary.json, tags=list(summary.tags),
               processed_at=j.processed_at, scrub_version=j.scrub_version)
    return out
