"""Topic registry: every topic the pipeline uses, with its contract and retention.

Topic names can carry a prefix (settings ``topic_prefix``) so several pipelines — or tests — share one cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from schemas.audit import AuditEntry
from schemas.dlq import DeadLetter
from schemas.drift import DriftEvent, TrainRequest
from schemas.drift_state import DriftErase, DriftSnapshot
from schemas.escalation import EscalationEvent, HumanQueueItem
from schemas.otlp_spans import OtlpSpanRecord
from schemas.preference import Label, Preference
from schemas.registry import RegistryEvent
from schemas.rollout import RolloutDecisionRecord, RolloutFlag
from schemas.trace import Trace
from schemas.verdict import JudgedTrace
from schemas.webhooks import WebhookDeadLetter

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[BaseModel]  # the record's contract (its JSON Schema is exported to schemas/json/)
    description: str
    raw_zone: bool = False  # may hold unscrubbed PII: short retention, tight ACLs
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    partitions: int | None = None  # None = the configured default
    configs: dict[str, str] = field(default_factory=dict)

    def topic_configs(self) -> dict[str, str]:
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if not self.compacted:
            cfg["retention.ms"] = str(self.retention_ms)
        cfg.update(self.configs)
        return cfg


TRACES = "agent.traces"
DLQ = "agent.traces.dlq"
JUDGED = "traces.judged"
ESCALATIONS = "judge.escalations"
LABELS = "feedback.labels"
PREFERENCES = "feedback.preferences"
HUMAN_QUEUE = "judge.human_queue"
DRIFT = "drift.events"
DRIFT_STATE = "drift.state"
TRAIN_REQUESTS = "train.requests"
REGISTRY = "models.registry"
ROLLOUT = "rollout.flags"
AUDIT = "audit.log"
FEEDBACK_DLQ = "feedback.dlq"
ROLLOUT_DECISIONS = "rollout.decisions"
WEBHOOKS_DLQ = "webhooks.dlq"
DRIFT_ERASE = "drift.erase"
OTLP_SPANS = "ingest.otlp_spans"

TOPICS: dict[str, TopicSpec] = {
    s.name: s
    for s in [
        TopicSpec(TRACES, Trace, "Raw agent traces (unscrubbed).", raw_zone=True, retention_ms=3 * DAY_MS),
        TopicSpec(DLQ, DeadLetter, "Records that failed validation, with reason and original bytes.",
                  raw_zone=True, retention_ms=3 * DAY_MS),
        TopicSpec(FEEDBACK_DLQ, DeadLetter, "Labels and preferences that failed validation, with reason and original "
                  "bytes (unvalidated input: raw zone).", raw_zone=True, retention_ms=7 * DAY_MS),
        TopicSpec(JUDGED, JudgedTrace, "Scrubbed traces with fast-judge verdicts.", retention_ms=30 * DAY_MS),
        TopicSpec(ESCALATIONS, EscalationEvent, "Judged traces escalated to high-fidelity judges.",
                  retention_ms=30 * DAY_MS),
        TopicSpec(LABELS, Label, "High-fidelity labels from LLM judges and humans.", retention_ms=365 * DAY_MS),
        TopicSpec(PREFERENCES, Preference, "Preferences logged through the SDK.", retention_ms=365 * DAY_MS),
        TopicSpec(HUMAN_QUEUE, HumanQueueItem, "Escalations only a person can judge.", retention_ms=30 * DAY_MS),
        TopicSpec(DRIFT, DriftEvent, "Drift events from the online monitors.", retention_ms=365 * DAY_MS),
        TopicSpec(DRIFT_STATE, DriftSnapshot,
                  "Drift-monitor snapshots per monitor app id (compacted changelog; value: an 8-byte big-endian save "
                  "counter, then the snapshot JSON). Compacted, and deletable: `alignloop erase` moves a partition's start past "
                  "the snapshots that held an erased trace (DeleteRecords needs the delete policy; retention is "
                  "infinite, so nothing else is deleted by time).", compacted=True,
                  configs={"max.message.bytes": "10485760", "cleanup.policy": "compact,delete",
                           "retention.ms": "-1", "retention.bytes": "-1"}),
        TopicSpec(TRAIN_REQUESTS, TrainRequest, "Retraining requests.", retention_ms=90 * DAY_MS),
        TopicSpec(REGISTRY, RegistryEvent, "Trained adapters with manifests and gate results.", compacted=True),
        TopicSpec(ROLLOUT, RolloutFlag, "Rollout flags per agent (compacted: latest wins).", compacted=True),
        TopicSpec(AUDIT, AuditEntry,
                  "Audit trail of promotions, rollbacks and config changes (one partition: total order).",
                  retention_ms=-1, partitions=1),
        TopicSpec(ROLLOUT_DECISIONS, RolloutDecisionRecord,
                  "Rollout controller decisions, each in one transaction with the flag it made (key: agent id).",
                  retention_ms=-1),
        TopicSpec(WEBHOOKS_DLQ, WebhookDeadLetter, "Webhook deliveries that failed every attempt, with the signed "
                  "payload, for re-sending.", retention_ms=30 * DAY_MS),
        TopicSpec(DRIFT_ERASE, DriftErase, "Erasure commands to the drift monitors: keyed trace ids to drop from "
                  "their state (no id or text). Read by every monitor, group-less, from its stored position.",
                  retention_ms=365 * DAY_MS, partitions=1),
        TopicSpec(OTLP_SPANS, OtlpSpanRecord,
                  "Spans the OTLP receiver acknowledged, per OTel trace (key: trace id), and the assembler's done "
                  "markers; unscrubbed span attributes (raw zone, like agent.traces).", raw_zone=True,
                  retention_ms=3 * DAY_MS, configs={"max.message.bytes": "10485760"}),
    ]
}


def topic_name(name: str, prefix: str = "") -> str:
    """The physical topic name for a logical one."""
    if name not in TOPICS:
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(sorted(TOPICS))}")
    return f"{prefix}{name}"
