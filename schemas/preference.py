"""Preferences (seed 000) and feedback labels (judges and humans)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PREFERENCE_SCHEMA_VERSION = 1
LABEL_SCHEMA_VERSION = 1


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(PREFERENCE_SCHEMA_VERSION, ge=1, le=PREFERENCE_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    pref_id: str
    prompt: str
    candidates: list[str] = Field(..., min_length=2)
    chosen_idx: int = Field(..., ge=0)
    rejected_idx: int = Field(..., ge=0)
    strength: float = Field(1.0, ge=0.0, le=1.0, description="How strongly chosen beats rejected.")
    rationale: str = ""
    safety_tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict, description="source, annotator, timestamps, model versions")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="after")
    def _indices(self) -> "Preference":
        n = len(self.candidates)
        if self.chosen_idx >= n or self.rejected_idx >= n:
            raise ValueError(f"chosen_idx/rejected_idx must be < len(candidates)={n}")
        if self.chosen_idx == self.rejected_idx:
            raise ValueError("chosen_idx and rejected_idx must differ")
        return self


class Label(BaseModel):
    """A high-fidelity judgement of one trace (LLM judge or human), published to ``feedback.labels``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: int = Field(LABEL_SCHEMA_VERSION, ge=1, le=LABEL_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    label_id: str
    trace_id: str
    policy_id: str = "base"
    source: Literal["llm_judge", "human", "rule"] = "llm_judge"
    annotator: str = ""
    scores: dict[str, float] = Field(default_factory=dict)
    passed: bool
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    rationale: str = ""
    judge_version: str = "1"
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
