"""alignloop contracts: one pydantic model per topic, Delta table schemas, the topic registry."""
from schemas.audit import AuditEntry, verify_chain
from schemas.dlq import DeadLetter
from schemas.drift import DriftEvent, TrainRequest
from schemas.drift_state import DriftSnapshot
from schemas.escalation import EscalationEvent, HumanQueueItem
from schemas.preference import Label, Preference
from schemas.registry import AdapterManifest, RegistryEvent
from schemas.rollout import RolloutFlag, RolloutVariant
from schemas.topics import TOPICS, TopicSpec, topic_name
from schemas.trace import TRACE_SCHEMA_VERSION, ContextItem, ToolCall, Trace
from schemas.verdict import DIMENSIONS, JudgedTrace, PiiFinding, SourceRef, Verdict

__all__ = [
    "DIMENSIONS", "TOPICS", "TRACE_SCHEMA_VERSION", "AdapterManifest", "AuditEntry", "ContextItem", "DeadLetter",
    "DriftEvent", "DriftSnapshot", "EscalationEvent", "HumanQueueItem", "JudgedTrace", "Label", "PiiFinding",
    "Preference", "RegistryEvent", "RolloutFlag", "RolloutVariant", "SourceRef", "ToolCall", "TopicSpec", "Trace",
    "TrainRequest", "Verdict", "topic_name", "verify_chain",
]
