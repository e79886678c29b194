"""The fused step: validate → scrub → fast judges, for one record (``Pipeline.process``) or a batch, stage by stage
(``Pipeline.process_batch``, what the worker runs). Pure: no Kafka, no Delta, no metrics.

Neither raises on input; every record becomes either a ``JudgedTrace`` or a ``DeadLetter``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import ValidationError
from pydantic_core import to_json

from schemas.dlq import DeadLetter
from schemas.trace import TRACE_SCHEMA_VERSION, Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict
from streams.judges.base import JudgeContext, is_shared, run_judges

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs
    from streams.judges.base import Judge
    from streams.scrub.base import Scrubber

MAX_ERROR_CHARS = 2000


def _short_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def classify_validation_error(exc: ValidationError) -> str:
    """Map a pydantic error to a dead-letter reason."""
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return "invalid_json"
    if any(e["type"] == "model_type" and not e["loc"] for e in errors):
        return "not_an_object"
    if any(e["loc"] == ("schema_version",) and e["type"] == "less_than_equal" for e in errors):
        return "unsupported_schema_version"
    return "validation_error"


class Pipeline:
    def __init__(self, scrubber: "Scrubber", judges: list["Judge"], *, max_record_bytes: int = 1_000_000):
        from streams.judges import aggregate
        from streams.scrub import scrub_trace

        self.scrubber = scrubber
        self.judges = judges  # a property: keeps the unwrapped list the hot path calls in step
        self.max_record_bytes = max_record_bytes
        self._scrub_trace = scrub_trace
        self._aggregate = aggregate

    @property
    def judges(self) -> list["Judge"]:
        return self._judges

    @judges.setter
    def judges(self, judges: list["Judge"]) -> None:
        self._judges = judges

    def _judge(self, clean: Trace, pii: list) -> list:
        """Every judge's verdict (``run_judges``: a judge that raises yields an error verdict)."""
        return run_judges(self._judges, clean, JudgeContext(pii=pii))

    @classmethod
    def from_settings(cls, settings: "Settings", configs: "AreaConfigs") -> "Pipeline":
        from streams.judges import build_fast_judges
        from streams.scrub import build_scrubber

        return cls(build_scrubber(settings, configs.scrub), build_fast_judges(configs.policy, configs.judges),
                   max_record_bytes=settings.max_record_bytes)

    def dead_letter(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int, *,
                    stage: str, reason: str, error: str) -> DeadLetter:
        return DeadLetter(stage=stage, reason=reason, error=error[:MAX_ERROR_CHARS], topic=topic,
                          partition=partition, offset=offset, size_bytes=len(raw), key=key, value=raw,
                          failed_at=datetime.now(timezone.utc))

    def validate(self, raw: bytes) -> Trace | tuple[str, str]:
        """The Trace, or (reason, error) for the DLQ."""
        if len(raw) > self.max_record_bytes:
            return "too_large", f"record is {len(raw)} bytes; the limit is {self.max_record_bytes} (max_record_bytes)"
        try:
            return Trace.model_validate_json(raw)
        except ValidationError as exc:
            reason, detail = classify_validation_error(exc), _short_validation_error(exc)
        except Exception as exc:  # pydantic-core raises ValueError on some broken input
            return "invalid_json", f"{type(exc).__name__}: {exc}"
        if reason == "invalid_json":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as ude:
                return "invalid_utf8", f"not UTF-8: {ude}"
            try:
                json.loads(raw)
            except ValueError as jde:
                return "invalid_json", f"not JSON: {jde}"
        if reason == "unsupported_schema_version":
            return reason, (f"schema_version is newer than this worker understands (max {TRACE_SCHEMA_VERSION}); "
                            "upgrade the worker, then replay the DLQ")
        return reason, detail

    def process(self, raw: bytes, topic: str, partition: int, offset: int,
                key: bytes | None = None) -> JudgedTrace | DeadLetter:
        """One record's outcome: ``process_batch`` of a batch of one."""
        return self.process_batch([(topic, partition, offset, key, raw)])[0]

    def process_batch(self, records: Sequence[tuple[str, int, int, bytes | None, bytes]]
                      ) -> list[JudgedTrace | DeadLetter]:
        """``process`` for each (topic, partition, offset, key, value), with the same outcomes, run stage by stage:
        every record validated and scrubbed, then every clean trace judged, then every judged trace assembled.

        Record by record, each stage's code and tables (the scrubber's memos, the judges' trigger sets and shared
        verdicts) are pushed out of the CPU caches by the other stages before the next record needs them: in a
        worker the fast judges cost about twice what they cost in a tight loop. Stage by stage they stay warm
        across the batch. A bug in any stage costs its record (kept in the DLQ), never the batch or the worker."""
        out: list[Any] = [None] * len(records)
        scrubbed: list[tuple[int, Trace, list]] = []
        for i, (topic, partition, offset, key, raw) in enumerate(records):
            try:
                got = self._scrubbed(raw, topic, partition, offset, key)
            except Exception as exc:
                out[i] = self._failed(raw, key, topic, partition, offset, exc)
                continue
            if got.__class__ is DeadLetter:
                out[i] = got
            else:
                scrubbed.append((i, *got))  # type: ignore[arg-type]
        judge = self._judge
        verdicts: list[Any] = []
        for i, clean, pii in scrubbed:
            try:
                verdicts.append(judge(clean, pii))
            except Exception as exc:
                topic, partition, offset, key, raw = records[i]
                out[i] = self._failed(raw, key, topic, partition, offset, exc)
                verdicts.append(None)
        for (i, clean, pii), found in zip(scrubbed, verdicts):
            if found is None:
                continue
            topic, partition, offset, key, raw = records[i]
            try:
                out[i] = self._judged(clean, pii, found, topic, partition, offset)
            except Exception as exc:
                out[i] = self._failed(raw, key, topic, partition, offset, exc)
        return out

    def _failed(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int,
                exc: Exception) -> DeadLetter:
        return self.dead_letter(raw, key, topic, partition, offset, stage="judge", reason="processing_error",
                                error=f"{type(exc).__name__}: {exc}")

    def _scrubbed(self, raw: bytes, topic: str, partition: int, offset: int,
                  key: bytes | None) -> tuple[Trace, list] | DeadLetter:
        """The validated, scrubbed trace and its PII findings, or the record's dead letter."""
        checked = self.validate(raw)
        if isinstance(checked, tuple):
            return self.dead_letter(raw, key, topic, partition, offset, stage="validate", reason=checked[0],
                                    error=checked[1])
        try:
            return self._scrub_trace(checked, self.scrubber)
        except Exception as exc:  # a scrubber bug must not leak raw text downstream, nor kill the worker
            return self.dead_letter(raw, key, topic, partition, offset, stage="scrub", reason="processing_error",
                                    error=f"{type(exc).__name__}: {exc}")

    def _judged(self, clean: Trace, pii: list, verdicts: list, topic: str, partition: int,
                offset: int) -> JudgedTrace:
        return JudgedTrace(trace=clean, verdicts=verdicts, outcome=self._aggregate(verdicts), pii=pii,
                           source=SourceRef(topic=topic, partition=partition, offset=offset),
                           processed_at=datetime.now(timezone.utc))


def _dump(v: Any) -> str:
    """Compact JSON of models or plain values, serialised in Rust (pydantic-core); empties need no call."""
    if not v:
        return "[]" if isinstance(v, list) else "{}" if isinstance(v, dict) else to_json(v).decode()
    return to_json(v).decode()


class VerdictSummary:
    """What the event, the row and the metrics need from a trace's verdicts, worked out once: their JSON (as
    ``model_dump_json`` writes it), the lowest score per dimension, the sorted tags, and the metric label of each."""

    __slots__ = ("json", "json_bytes", "scores_json", "tags", "labels")

    def __init__(self, verdicts: list[Verdict]) -> None:
        scores: dict[str, float] = {}
        tags: set[str] = set()
        for v in verdicts:
            for dim, sc in v.scores.items():
                prev = scores.get(dim)
                if prev is None or sc < prev:
                    scores[dim] = sc
            if v.tags:
                tags.update(v.tags)
        frags = _FRAGMENTS
        parts = []
        for v in verdicts:  # a shared verdict's JSON is made once; others' each time
            f = frags.get(id(v))
            if f is None:
                f = to_json(v)
                if is_shared(v) and len(frags) < _SUMMARIES_MAX:
                    frags[id(v)] = f
                    _PINNED.append(v)
            parts.append(f)
        self.json_bytes = b"[" + b",".join(parts) + b"]"
        self.json = self.json_bytes.decode()
        self.scores_json = _dump(scores)
        self.tags = sorted(tags)
        self.labels = tuple((v.judge, v.status, v.passed) for v in verdicts)


# Summaries of verdict lists made only of shared verdicts (streams.judges.base.shared_verdict), by their ids: a
# verdict kept here is pinned (_PINNED), so its id names it for good. Most traces get such a list (each
# judge's "nothing found" verdict, or a finding its VerdictInterner has kept); a list with any other verdict is
# summarised afresh, never stored.
_SUMMARIES: dict[tuple[int, ...], VerdictSummary] = {}
_SUMMARIES_MAX = 4096
_FRAGMENTS: dict[int, bytes] = {}  # a shared verdict's id -> its JSON
_PINNED: list = []  # what the id keys above name, held so no id is reused (stopgap until streams/encoding.py)


def summarize(verdicts: list[Verdict]) -> VerdictSummary:
    key = tuple(map(id, verdicts))
    got = _SUMMARIES.get(key)
    if got is not None:
        return got
    summary = VerdictSummary(verdicts)
    if len(_SUMMARIES) < _SUMMARIES_MAX and all(map(is_shared, verdicts)):
        _SUMMARIES[key] = summary
        _PINNED.append(tuple(verdicts))
    return summary


_VERDICTS = {"verdicts"}
_JUDGED_JSON = JudgedTrace.__pydantic_serializer__.to_json  # what model_dump_json calls, as bytes


def encode_event(j: JudgedTrace, summary: VerdictSummary | None = None) -> bytes:
    """``j.model_dump_json().encode()``, byte for byte, with the verdicts' JSON taken from ``summary``: the rest is
    serialised without them and theirs is put back before ``"outcome"`` (found from the right: what follows the
    trace holds no unescaped quote that could fake it, see ``_tail_pii``)."""
    summary = summary or summarize(j.verdicts)
    body = _JUDGED_JSON(j, exclude=_VERDICTS)
    i = body.rfind(b',"outcome":"')
    view = memoryview(body)
    return b"".join((view[:i], b',"verdicts":', summary.json_bytes, view[i:]))


def _tail_pii(event: bytes) -> str | None:
    """The pii JSON, cut from the end of the judged event (``model_dump_json``) instead of being serialised again.
    Only what follows the trace is searched, and only from the right: verdicts, outcome, pii, source and
    processed_at hold no unescaped quote that could fake a delimiter (strings are JSON-escaped, keys are fixed
    names, topic names are [a-zA-Z0-9._-]); the trace before them may hold anything."""
    o = event.rfind(b',"outcome":"')
    s = event.rfind(b',"source":{')
    p = event.rfind(b',"pii":', o, s)
    if min(o, s, p) < 0:
        return None
    return event[p + 7:s].decode()


def to_row(j: JudgedTrace, event: bytes | None = None, summary: VerdictSummary | None = None) -> dict[str, Any]:
    """A `traces` table row (schemas.tables.TRACES_SCHEMA) from a judged trace; pass its event bytes
    (``j.model_dump_json()``) to reuse their pii JSON, and its verdicts' ``summarize``."""
    t = j.trace
    summary = summary or summarize(j.verdicts)
    pii_json = _tail_pii(event) if event is not None else None
    if pii_json is None:
        pii_json = _dump(j.pii)
    calls = t.tool_calls
    return {
        "trace_id": t.trace_id, "conversation_id": t.conversation_id, "agent_id": t.agent_id,
        "policy_id": t.policy_id, "ts": t.timestamp, "date": t.timestamp.date().isoformat(),
        "user_message": t.user_message, "final_response": t.final_response,
        "context_json": _dump(t.context), "tool_calls_json": _dump(calls),
        "tool_names": [c.name for c in calls],
        "n_tool_errors": sum(c.status != "ok" for c in calls),
        "latency_ms": t.latency_ms, "flags": t.flags, "candidates_json": _dump(t.candidates),
        "metadata_json": _dump(t.metadata), "outcome": j.outcome, "scores_json": summary.scores_json,
        "verdicts_json": summary.json, "tags": summary.tags,
        "pii_json": pii_json, "pii_count": sum(p.count for p in j.pii),
        "src_topic": j.source.topic, "src_partition": j.source.partition, "src_offset": j.source.offset,
        "processed_at": j.processed_at,
    }
