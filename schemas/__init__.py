"""alignloop contracts: one pydantic model per topic, Delta table schemas, the topic registry."""
from schemas.dlq import DeadLetter
from schemas.preference import Label, Preference
from schemas.topics import TOPICS, TopicSpec, topic_name
from schemas.trace import TRACE_SCHEMA_VERSION, ContextItem, ToolCall, Trace
from schemas.verdict import DIMENSIONS, JudgedTrace, PiiFinding, SourceRef, Verdict

__all__ = [
    "DIMENSIONS", "TOPICS", "TRACE_SCHEMA_VERSION", "ContextItem", "DeadLetter", "JudgedTrace", "Label",
    "PiiFinding", "Preference", "SourceRef", "ToolCall", "TopicSpec", "Trace", "Verdict", "topic_name",
]
