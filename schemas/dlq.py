"""Dead letters: records the pipeline could not accept, with the reason and the original bytes.

``agent.traces.dlq`` sits inside the raw trust zone (same retention and ACLs as ``agent.traces``): it keeps the
original bytes so a fixed producer or a fixed parser can replay them.
"""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DLQ_SCHEMA_VERSION = 1

DeadLetterReason = Literal[
    "too_large", "invalid_utf8", "invalid_json", "not_an_object", "unsupported_schema_version",
    "validation_error", "processing_error",
]


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = DLQ_SCHEMA_VERSION
    stage: Literal["validate", "scrub", "judge", "sink"]
    reason: DeadLetterReason
    error: str = Field(..., description="Human-readable error, truncated to 2 KB.")
    topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    value_b64: str = Field(..., description="Original record bytes, base64.")
    failed_at: datetime

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.value_b64)
