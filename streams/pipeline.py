"""The fused step: validate → scrub → fast judges, for one record (``Pipeline.process``) or a batch, stage by stage
(``Pipeline.process_batch``, what the worker runs). Pure: no Kafka, no Delta, no metrics; encoding the outcomes
for Kafka and Delta is ``streams.encoding``'s.

Neither raises on input; every record becomes either a ``JudgedTrace`` or a ``DeadLetter``. Every stage is bounded
per record: structural limits at validation (``RecordLimits``), and a time budget per record per stage.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import ValidationError

from schemas.dlq import DeadLetter, validation_detail, validation_reason
from schemas.record import Record
from schemas.trace import TRACE_SCHEMA_VERSION, Trace
from schemas.verdict import JudgedTrace, SourceRef
from streams.judges import aggregate
from streams.judges.base import JudgeContext, run_judges
from streams.scrub import scrub_trace

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs
    from streams.judges.base import Judge
    from streams.scrub.base import Scrubber
    from streams.judges.policy_config import PolicyConfig


@dataclass(frozen=True)
class RecordLimits:
    """What one record may be and cost (see the worker section of ``schemas.settings.Settings``): over a
    structural limit it is dead-lettered at validation (``over_limit``), over the time budget in any stage it is
    dead-lettered naming that stage (``over_budget``), so no record can stall the worker or grow without bound.
    Nesting needs no limit of its own: deeper than the JSON parser goes is ``invalid_json``, and the scrubber
    replaces structures deeper than its ``max_depth`` (a walk here cost 5-8 µs per trace, 2-3% of the step)."""

    max_record_bytes: int = 1_000_000
    max_tool_calls: int = 1000
    max_context_items: int = 1000
    stage_budget_s: float = 2.0

    @classmethod
    def from_settings(cls, s: "Settings") -> "RecordLimits":
        return cls(max_record_bytes=s.max_record_bytes, max_tool_calls=s.max_tool_calls,
                   max_context_items=s.max_context_items, stage_budget_s=s.stage_budget_s)


def over_limits(t: Trace, limits: RecordLimits) -> str | None:
    """Why ``t`` is over a structural limit, or None."""
    if len(t.tool_calls) > limits.max_tool_calls:
        return f"{len(t.tool_calls)} tool calls; the limit is {limits.max_tool_calls} (max_tool_calls)"
    if len(t.context) > limits.max_context_items:
        return f"{len(t.context)} context items; the limit is {limits.max_context_items} (max_context_items)"
    return None


class Pipeline:
    def __init__(self, scrubber: "Scrubber", judges: list["Judge"], *, limits: RecordLimits | None = None):
        self.scrubber = scrubber
        self.judges = judges
        self.limits = limits or RecordLimits()
        self.scrub_version: str | None = getattr(scrubber, "version", None)  # build_scrubber's; stamped on outcomes

    def _judge(self, clean: Trace, pii: list) -> list:
        """Every judge's verdict (``run_judges``: a judge that raises yields an error verdict)."""
        return run_judges(self.judges, clean, JudgeContext(pii=pii))

    @classmethod
    def from_settings(cls, settings: "Settings", configs: "AreaConfigs") -> "Pipeline":
        from streams.scrub import build_scrubber

        scrubber = build_scrubber(settings, configs.scrub)
        return cls(scrubber, fast_judges_for(configs, scrubber), limits=RecordLimits.from_settings(settings))

    @staticmethod
    def dead_letter(record: Record, *, stage: str, reason: str, error: str) -> DeadLetter:
        return DeadLetter.of(record, stage=stage, reason=reason, error=error)

    def validate(self, raw: bytes) -> Trace | tuple[str, str]:
        """The Trace, or (reason, error) for the DLQ."""
        limit = self.limits.max_record_bytes
        if len(raw) > limit:
            return "too_large", f"record is {len(raw)} bytes; the limit is {limit} (max_record_bytes)"
        try:
            trace = Trace.model_validate_json(raw)
        except ValidationError as exc:
            reason, detail = validation_reason(exc), validation_detail(exc)
        except Exception as exc:  # pydantic-core raises ValueError on some broken input
            return "invalid_json", f"{type(exc).__name__}: {exc}"
        else:
            over = over_limits(trace, self.limits)
            return trace if over is None else ("over_limit", over)
        if reason == "invalid_json":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as ude:
                return "invalid_utf8", f"not UTF-8: {ude}"
            try:
                json.loads(raw)
            except RecursionError:  # nested deeper than any parser here goes: still not JSON we accept
                return "invalid_json", "not JSON: nested deeper than the parser's depth limit"
            except ValueError as jde:
                return "invalid_json", f"not JSON: {jde}"
        if reason == "unsupported_schema_version":
            return reason, (f"schema_version is newer than this worker understands (max {TRACE_SCHEMA_VERSION}); "
                            "upgrade the worker, then replay the DLQ")
        return reason, detail

    def process(self, raw: bytes, topic: str, partition: int, offset: int,
                key: bytes | None = None) -> JudgedTrace | DeadLetter:
        """One record's outcome: ``process_batch`` of a batch of one."""
        return self.process_batch([Record(topic, partition, offset, key, raw)])[0]

    def process_batch(self, records: Sequence[Record]) -> list[JudgedTrace | DeadLetter]:
        """``process`` for each record, with the same outcomes, run stage by stage: every record validated and
        scrubbed, then every clean trace judged, then every judged trace assembled.

        Record by record, each stage's code and tables (the scrubber's memos, the judges' trigger sets) are pushed
        out of the CPU caches by the other stages before the next record needs them: in a worker the fast judges
        cost about twice what they cost in a tight loop. Stage by stage they stay warm across the batch. A bug in
        any stage, or a record over its stage's time budget, costs its record (kept in the DLQ), never the batch."""
        out: list[Any] = [None] * len(records)
        scrubbed: list[tuple[int, Trace, list]] = []
        for i, record in enumerate(records):
            got = self._scrubbed(record)
            if got.__class__ is DeadLetter:
                out[i] = got
            else:
                scrubbed.append((i, *got))  # type: ignore[arg-type]
        self._judge_stage(records, scrubbed, out)
        return out

    def judge_batch(self, records: Sequence[Record], clean: Sequence[tuple[Trace, list]]
                    ) -> list[JudgedTrace | DeadLetter]:
        """``process_batch``'s judge and assembly stages over traces already scrubbed by this pipeline's scrubber
        version (``clean[i]``: record i's scrubbed trace and PII findings): a replay that reuses the live rows'
        scrubbed text (``streams.replay``). Same outcomes as ``process_batch`` of the records."""
        out: list[Any] = [None] * len(records)
        self._judge_stage(records, [(i, t, pii) for i, (t, pii) in enumerate(clean)], out)
        return out

    def _judge_stage(self, records: Sequence[Record], scrubbed: list[tuple[int, Trace, list]], out: list) -> None:
        judge, clock, budget = self._judge, time.perf_counter, self.limits.stage_budget_s
        verdicts: list[Any] = []
        for i, clean, pii in scrubbed:
            started = clock()
            try:
                found = judge(clean, pii)
            except Exception as exc:
                out[i], found = self._failed(records[i], "judge", exc), None
            else:
                if clock() - started > budget:
                    out[i], found = self._over_budget(records[i], "judge", clock() - started), None
            verdicts.append(found)
        for (i, clean, pii), found in zip(scrubbed, verdicts):
            if found is None:
                continue
            try:
                out[i] = self._judged(clean, pii, found, records[i])
            except Exception as exc:
                out[i] = self._failed(records[i], "judge", exc)

    def _failed(self, record: Record, stage: str, exc: Exception) -> DeadLetter:
        return self.dead_letter(record, stage=stage, reason="processing_error", error=f"{type(exc).__name__}: {exc}")

    def _over_budget(self, record: Record, stage: str, took_s: float) -> DeadLetter:
        return self.dead_letter(record, stage=stage, reason="over_budget",
                                error=(f"{stage} took {took_s:.3f} s on this record; the budget is "
                                       f"{self.limits.stage_budget_s} s per record per stage (stage_budget_s)"))

    def _scrubbed(self, record: Record) -> tuple[Trace, list] | DeadLetter:
        """The validated, scrubbed trace and its PII findings, or the record's dead letter."""
        clock, budget = time.perf_counter, self.limits.stage_budget_s
        started = clock()
        try:
            checked = self.validate(record.value)
        except Exception as exc:
            return self._failed(record, "validate", exc)
        if isinstance(checked, tuple):
            return self.dead_letter(record, stage="validate", reason=checked[0], error=checked[1])
        validated = clock()
        if validated - started > budget:
            return self._over_budget(record, "validate", validated - started)
        try:
            got = scrub_trace(checked, self.scrubber)
        except Exception as exc:  # a scrubber bug must not leak raw text downstream, nor kill the worker
            return self._failed(record, "scrub", exc)
        if clock() - validated > budget:
            return self._over_budget(record, "scrub", clock() - validated)
        return got

    def _judged(self, clean: Trace, pii: list, verdicts: list, record: Record) -> JudgedTrace:
        source = SourceRef(topic=record.topic, partition=record.partition, offset=record.offset,
                           value_sha256=hashlib.sha256(record.value).hexdigest())
        return JudgedTrace(trace=clean, verdicts=verdicts, outcome=aggregate(verdicts), pii=pii, source=source,
                           processed_at=datetime.now(timezone.utc), scrub_version=self.scrub_version)


def scrubbed_ids(scrubber: "Scrubber", agent_id: str, policy_id: str) -> tuple[str, str]:
    """The (agent id, policy id) a scrubbed trace carries for these raw ids: the scrubber pseudonymises
    identifiers that look like personal data (``support/jane.doe@acme.io`` → ``support/<EMAIL_…>``)."""
    probe = Trace(trace_id="probe", conversation_id="probe", agent_id=agent_id, policy_id=policy_id,
                  user_message="", final_response="")
    out = scrub_trace(probe, scrubber)[0]
    return out.agent_id, out.policy_id


def with_scrubbed_agent_ids(policy: "PolicyConfig", scrubber: "Scrubber") -> "PolicyConfig":
    """``policy`` whose per-agent tool allowlists also answer under each agent id as scrubbed: the judges see
    scrubbed traces, so an agent whose id the scrubber changes would otherwise silently get the default allowlist.
    Unchanged (the same object) when no configured id is changed by the scrubber."""
    agents = policy.tools.agents
    aliases = {scrubbed_ids(scrubber, a, "p")[0]: tools for a, tools in agents.items()}
    extra = {a: tools for a, tools in aliases.items() if a not in agents}
    if not extra:
        return policy
    return policy.model_copy(update={"tools": policy.tools.model_copy(update={"agents": {**agents, **extra}})})


def fast_judges_for(configs: "AreaConfigs", scrubber: "Scrubber") -> list["Judge"]:
    """The configured fast judges, for traces scrubbed by ``scrubber`` (the spine's, the monitor's curation and a
    replay's all judge through this)."""
    from streams.judges import build_fast_judges

    return build_fast_judges(with_scrubbed_agent_ids(configs.policy, scrubber), configs.judges)

