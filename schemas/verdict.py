"""Judge outputs and the judged trace published to ``traces.judged``."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.trace import Trace

JUDGED_SCHEMA_VERSION = 2  # 2 (2026-12): scrub_version, source.value_sha256 (optional; version 1 events still read)

# Score dimensions every judge speaks in (0 = worst, 1 = best). A judge fills the ones it knows about.
DIMENSIONS = ("task_success", "helpfulness", "safety", "policy_compliance", "tool_correctness")


class Verdict(BaseModel):
    # Read-only once made: fast judges hand out one shared instance for their common "nothing found" verdict
    # (streams.judges.base.shared_verdict), so no consumer may change a verdict or the lists and dict inside it.
    model_config = ConfigDict(extra="forbid", frozen=True)
    judge: str = Field(..., description="Judge name, e.g. 'policy'.")
    judge_version: str = Field("1", description="Bumped whenever the judge's logic or config changes.")
    status: Literal["ok", "error", "skipped"] = "ok"
    scores: dict[str, float] = Field(default_factory=dict, description="Per-dimension scores in [0, 1].")
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    passed: bool = True
    reasons: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="Machine-readable findings, e.g. 'disallowed:malware'.")
    error: str | None = None


class PiiFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    field: str
    count: int = 1


class SourceRef(BaseModel):
    """Where a record came from, so every row traces back to a Kafka offset."""

    model_config = ConfigDict(extra="forbid")
    topic: str
    partition: int
    offset: int
    value_sha256: str | None = Field(None, description="sha256 (hex) of the record's raw value, when known: a replay "
                                     "reuses a row only for the very bytes it was made from.")


class JudgedTrace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(JUDGED_SCHEMA_VERSION, ge=1, le=JUDGED_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    trace: Trace = Field(..., description="The trace with every text field scrubbed.")
    verdicts: list[Verdict] = Field(default_factory=list)
    outcome: Literal["pass", "flag", "fail"] = "pass"
    pii: list[PiiFinding] = Field(default_factory=list)
    source: SourceRef
    processed_at: datetime
    scrub_version: str | None = Field(None, description="The scrubber's version (code, word lists, config, key id) "
                                      "that made ``trace``; a replay under the same version reuses the scrubbed text.")
