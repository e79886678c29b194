"""Rollout flags: one `RolloutFlag` per agent on the compacted `rollout.flags` topic (latest version wins).

A flag names two variants, the baseline (what the agent serves today) and the candidate (the adapter being
canaried), and integer weights that sum to 100. A conversation is assigned by flagd's `fractional` bucketing
(``streams/rollout/bucketing.py``), so an OpenFeature flagd client evaluating the exported flag definition
(``streams/rollout/flagd.py``) picks the same variant as alignloop.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ROLLOUT_FLAG_SCHEMA_VERSION = 1

VariantName = Literal["baseline", "candidate"]
# idle: no candidate on traffic; canary: ramping; paused: weights frozen by an operator; promoted: the candidate
# serves everything; rolled_back: the candidate serves nothing (a rollback moves conversations back, by design).
Stage = Literal["idle", "canary", "paused", "promoted", "rolled_back"]
VARIANTS: tuple[VariantName, ...] = ("baseline", "candidate")


class Variant(BaseModel):
    """What serves a conversation: the policy, and the adapter (with its content hash) on top of the base model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy_id: str = Field(..., min_length=1)
    adapter_id: str | None = Field(None, description="None: the base model without an adapter.")
    adapter_hash: str | None = Field(None, description="Content hash of the adapter weights (traces stamp it).")

    @model_validator(mode="after")
    def _hash_with_adapter(self) -> "Variant":
        if (self.adapter_id is None) != (self.adapter_hash is None):
            raise ValueError("adapter_id and adapter_hash go together (both set, or both None for the base model)")
        return self


class RolloutFlag(BaseModel):
    """The rollout state of one agent. Records are keyed by ``agent_id``; ``version`` only ever increases."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = ROLLOUT_FLAG_SCHEMA_VERSION
    agent_id: str = Field(..., min_length=1, description="Also the flagd flag key.")
    rollout_id: str = Field(..., min_length=1)
    version: int = Field(..., ge=0, description="Monotonically increasing per agent; consumers drop older ones.")
    stage: Stage
    baseline: Variant
    candidate: Variant | None = Field(None, description="None when no rollout is in progress (stage idle).")
    weights: dict[VariantName, int] = Field(..., description="Percent of conversations per variant; sums to 100.")
    updated_at: AwareDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="after")
    def _weights(self) -> "RolloutFlag":
        if self.schema_version != ROLLOUT_FLAG_SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {self.schema_version} "
                             f"(this reader knows {ROLLOUT_FLAG_SCHEMA_VERSION})")
        negative = {k: w for k, w in self.weights.items() if w < 0}
        if negative:
            raise ValueError(f"weights must be >= 0, got {negative}")
        if sum(self.weights.values()) != 100:
            raise ValueError(f"weights must sum to 100, got {sum(self.weights.values())} ({self.weights})")
        if self.candidate is None and self.weights.get("candidate", 0) != 0:
            raise ValueError("weights give the candidate traffic but the flag has no candidate variant")
        if self.candidate is None and self.stage not in ("idle", "rolled_back"):
            raise ValueError(f"stage {self.stage!r} needs a candidate variant")
        return self

    @property
    def flag_key(self) -> str:
        return self.agent_id

    @property
    def candidate_weight(self) -> int:
        return self.weights.get("candidate", 0)

    def variant(self, name: VariantName) -> Variant:
        if name == "candidate":
            if self.candidate is None:
                raise KeyError(f"agent {self.agent_id!r} has no candidate variant")
            return self.candidate
        return self.baseline
