"""Rollout flags (``rollout.flags``, compacted, keyed by agent id): which policy/adapter serves an agent's traffic.

One ``RolloutFlag`` per agent: a baseline and (during a rollout) a candidate variant, integer weights in percent
as flagd's ``fractional`` operation takes them, the rollout's stage and a version that only goes up, so a client
that sees a lower version than it holds ignores the record.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROLLOUT_SCHEMA_VERSION = 1
VARIANTS = ("baseline", "candidate")

RolloutStage = Literal["stable", "canary", "paused", "promoted", "rolled_back"]


class RolloutVariant(BaseModel):
    """What serves a conversation assigned to this variant."""

    model_config = ConfigDict(extra="forbid")
    policy_id: str = Field(..., min_length=1, max_length=256, description="Stamped on every trace it serves.")
    adapter_id: str | None = Field(None, description="Registry id (<name>@<version>); None = the base model alone.")
    adapter_hash: str | None = Field(None, description="Content hash of the adapter weights that serve it.")

    @model_validator(mode="after")
    def _hash_with_adapter(self) -> "RolloutVariant":
        if (self.adapter_id is None) != (self.adapter_hash is None):
            raise ValueError("adapter_id and adapter_hash go together (both set, or both empty for the base model)")
        return self


class RolloutFlag(BaseModel):
    """The current flag for one agent."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(ROLLOUT_SCHEMA_VERSION, ge=1, le=ROLLOUT_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    agent_id: str = Field(..., min_length=1, max_length=128, description="The record key.")
    version: int = Field(..., ge=0, description="Increases by at least one with every change; never goes back.")
    rollout_id: str | None = Field(None, description="The rollout this flag belongs to; None when stable.")
    stage: RolloutStage = "stable"
    baseline: RolloutVariant
    candidate: RolloutVariant | None = None
    weights: dict[Literal["baseline", "candidate"], int] = Field(
        default_factory=lambda: {"baseline": 100},
        description="Percent of conversations per variant (flagd fractional weights); they sum to 100.")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="after")
    def _consistent(self) -> "RolloutFlag":
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) != 100:
            raise ValueError(f"weights must be non-negative and sum to 100, got {self.weights}")
        if self.weights.get("candidate", 0) and self.candidate is None:
            raise ValueError("a candidate weight needs a candidate variant")
        if self.candidate is not None and self.rollout_id is None:
            raise ValueError("a candidate variant needs a rollout_id")
        return self

    def follows(self, previous: "RolloutFlag | None") -> bool:
        """Whether this record may replace ``previous`` (same agent, a higher version)."""
        return previous is None or (self.agent_id == previous.agent_id and self.version > previous.version)
