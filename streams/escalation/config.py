"""Escalation rules (configs/judges.yaml, section ``escalation``): which traces go to ``judge.escalations``."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TierBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_minute: float = Field(..., ge=0, description="Most escalations admitted to this tier per minute.")
    per_hour: float = Field(..., ge=0, description="Most escalations admitted to this tier per hour.")


class EscalationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    min_confidence: float = Field(0.6, ge=0, le=1,
                                  description="A passing trace whose least confident fast verdict is below this is "
                                              "uncertain.")
    uncertainty_band: tuple[float, float] = Field((0.3, 0.7), description="Learning judge pass probability in this "
                                                                            "band = uncertain.")
    risk_tags: list[str] = Field(default_factory=lambda: ["risk:high", "refusal:borderline", "pii_echo",
                                                          "tool_failure:acknowledged", "tool_failure:recovered",
                                                          "risk:medium", "tool_loop"],
                                 description="Tags (exact, or prefix ending in ':' / '*') that make a trace risky.")
    human_tags: list[str] = Field(default_factory=lambda: ["risk:self_harm_instructions"],
                                  description="Tags that send a trace straight to the human tier.")
    disagreement_gap: float = Field(0.6, gt=0, le=1,
                                    description="Max-min score on one dimension across judges at or above this = "
                                                "disagreement.")
    confident_fail: float = Field(0.75, ge=0, le=1,
                                  description="Fast failures at or above this confidence need no escalation.")
    audit_rate: float = Field(0.005, ge=0, le=1, description="Random audit sample of all traffic (unbiased).")
    min_priority: float = Field(0.3, ge=0, le=1, description="Candidates below this priority are never escalated.")
    max_fraction: float = Field(0.08, gt=0, le=1, description="Most escalations as a fraction of traffic seen.")
    weights: dict[str, float] = Field(default_factory=lambda: {"uncertainty": 1.0, "fail_doubt": 0.5, "learned": 1.0,
                                                               "learned_uncertain": 0.7, "risk": 0.6,
                                                               "disagreement": 0.6},
                                      description="Weight of each signal in the priority (the max is taken).")
    agreement_bonus: float = Field(0.1, ge=0, le=0.5, description="Priority added per extra signal that fires.")
    learned_veto: float = Field(0.7, ge=0, le=1, description="How far a confident 'good' from the learning judge "
                                                               "lowers a pass's priority.")
    reserve_tokens: float = Field(20.0, ge=0, description="Tokens a priority-0 candidate must leave in every budget "
                                                           "(scaled by 1 - priority).")
    window_s: float = Field(2.0, gt=0, description="Candidates wait up to this long so the best ones win the budget.")
    max_pending: int = Field(10_000, ge=1, description="Pending candidates kept; the least informative are dropped.")
    tiers: dict[str, TierBudget] = Field(default_factory=lambda: {
        "llm": TierBudget(per_minute=600, per_hour=20_000), "human": TierBudget(per_minute=10, per_hour=200)})

    @model_validator(mode="after")
    def _check(self) -> "EscalationConfig":
        lo, hi = self.uncertainty_band
        if not 0 <= lo < hi <= 1:
            raise ValueError("uncertainty_band must be [low, high] with 0 <= low < high <= 1")
        if "llm" not in self.tiers:
            raise ValueError("tiers must define 'llm'")
        return self
