"""Escalations (``judge.escalations``) and the human queue (``judge.human_queue``).

The monitor escalates judged traces the fast judges were unsure of; ``alignloop judge`` reads them, and what only a
person can judge goes on to the human queue with the reason.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

from schemas.verdict import JudgedTrace

ESCALATION_SCHEMA_VERSION = 1
HUMAN_QUEUE_SCHEMA_VERSION = 1


class EscalationEvent(BaseModel):
    """A record on ``judge.escalations`` (keyed by trace id)."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(ESCALATION_SCHEMA_VERSION, ge=1, le=ESCALATION_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    judged: JudgedTrace
    priority: float = Field(..., ge=0, le=2)
    reasons: list[str] = Field(default_factory=list)
    tier: str = Field("llm", description="'llm' (the LLM judge first) or 'human' (straight to the human queue).")
    audit: bool = Field(False, description="Sampled for auditing the fast judges, not for uncertainty.")
    escalated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class HumanQueueItem(BaseModel):
    """A record on ``judge.human_queue``: what only a person can judge, and why."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(HUMAN_QUEUE_SCHEMA_VERSION, ge=1, le=HUMAN_QUEUE_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    trace_id: str
    reason: str = Field(..., description="e.g. routed_to_human, llm_unjudgeable, llm_low_confidence, "
                                         "llm_inconsistent_verdict, pairwise_inconsistent, bad_escalation_record")
    escalation: EscalationEvent | None = None
    raw: str | None = Field(None, description="The record as received, when it could not be parsed.")
    llm_rationale: str = ""
    queued_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
