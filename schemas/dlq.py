"""Dead letters: records the pipeline could not accept, with the reason and the original bytes.

Following Kafka Connect's convention, a dead-letter record's key and value are the original key and bytes,
unchanged (so it always fits wherever the original fitted, and a fixed worker can replay it as is), and this model
travels as JSON in the ``alignloop.dlq`` header. ``agent.traces.dlq`` sits inside the raw trust zone (same
retention and ACLs as ``agent.traces``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.record import Record

DLQ_SCHEMA_VERSION = 1
DLQ_HEADER = "alignloop.dlq"
MAX_ERROR_CHARS = 2000  # a dead letter's error text is cut to this

DeadLetterReason = Literal[
    "too_large", "invalid_utf8", "invalid_json", "not_an_object", "unsupported_schema_version",
    "validation_error", "processing_error", "over_limit", "over_budget", "output_too_large",
    "unmappable",  # ingest (OTLP spans, OpenAI logs): valid input that says nothing a Trace can hold
]


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(DLQ_SCHEMA_VERSION, ge=1, le=DLQ_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    stage: Literal["validate", "scrub", "judge", "sink", "ingest"]
    reason: DeadLetterReason
    error: str = Field(..., description="Human-readable error, truncated to 2 KB.")
    topic: str = Field(..., description="Where the original record was read.")
    partition: int
    offset: int
    size_bytes: int = Field(..., description="Size of the original value.")
    failed_at: datetime
    key: bytes | None = Field(None, exclude=True, description="Original key (the DLQ record's key).")
    value: bytes = Field(b"", exclude=True, description="Original bytes (the DLQ record's value).")

    @classmethod
    def of(cls, record: Record, *, stage: str, reason: str, error: str) -> "DeadLetter":
        """The dead letter of a consumed ``record``: its original key and bytes, where it was read, why it failed
        (``error`` cut to ``MAX_ERROR_CHARS``), now."""
        return cls(stage=stage, reason=reason, error=error[:MAX_ERROR_CHARS], topic=record.topic,  # type: ignore[arg-type]
                   partition=record.partition, offset=record.offset, size_bytes=len(record.value),
                   key=record.key, value=record.value, failed_at=datetime.now(timezone.utc))

    def headers(self) -> list[tuple[str, bytes]]:
        return [(DLQ_HEADER, self.model_dump_json().encode())]

    @classmethod
    def from_record(cls, headers: Iterable[tuple[str, bytes]] | None, key: bytes | None, value: bytes | None
                    ) -> "DeadLetter":
        meta: dict[str, Any] | None = None
        for name, raw in headers or ():
            if name == DLQ_HEADER:
                meta = cls.model_validate_json(raw).model_dump()
        if meta is None:
            raise ValueError(f"not a dead letter: no {DLQ_HEADER} header")
        return cls(**meta, key=key, value=value or b"")

    def original_bytes(self) -> bytes:
        return self.value


def validation_reason(exc: ValidationError, raw: bytes | None = None) -> str:
    """The dead-letter reason for a record that failed its model's validation (``raw``: its bytes, to tell
    invalid UTF-8 apart from invalid JSON)."""
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return "invalid_utf8"
        return "invalid_json"
    if any(e["type"] == "model_type" and not e["loc"] for e in errors):
        return "not_an_object"
    if any(e["loc"] == ("schema_version",) and e["type"] == "less_than_equal" for e in errors):
        return "unsupported_schema_version"
    return "validation_error"


def validation_detail(exc: ValidationError) -> str:
    """The first five validation errors as one line (``field.path: message; ...``)."""
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]]
    more = exc.error_count() - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
