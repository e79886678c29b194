"""Rollout flags (``rollout.flags``, compacted, keyed by agent id): which policy/adapter serves an agent's traffic.

One ``RolloutFlag`` per agent: a baseline and (during a rollout) a candidate variant, integer weights in percent
as flagd's ``fractional`` operation takes them, the rollout's stage and a version that only goes up, so a client
that sees a lower version than it holds ignores the record. A conversation is assigned by flagd's bucketing
(``schemas/bucketing.py``), so an OpenFeature flagd client evaluating the exported flag definition
(``streams/rollout/flagd.py``) picks the same variant as alignloop.

Below the flag: the canary analyzer's configuration and the `Decision` it records (``streams/rollout/analysis.py``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ROLLOUT_SCHEMA_VERSION = 1
VARIANTS = ("baseline", "candidate")

VariantName = Literal["baseline", "candidate"]
# stable: no candidate on traffic; canary: ramping; paused: weights frozen by an operator; promoted: the candidate
# serves everything; rolled_back: the candidate serves nothing (a rollback moves conversations back, by design).
RolloutStage = Literal["stable", "canary", "paused", "promoted", "rolled_back"]


class RolloutVariant(BaseModel):
    """What serves a conversation assigned to this variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy_id: str = Field(..., min_length=1, max_length=256, description="Stamped on every trace it serves.")
    adapter_id: str | None = Field(None, description="Registry id (<name>@<version>); None = the base model alone.")
    adapter_hash: str | None = Field(None, description="Content hash of the adapter weights that serve it.")

    @model_validator(mode="after")
    def _hash_with_adapter(self) -> "RolloutVariant":
        if (self.adapter_id is None) != (self.adapter_hash is None):
            raise ValueError("adapter_id and adapter_hash go together (both set, or both empty for the base model)")
        return self


class RolloutFlag(BaseModel):
    """The current flag for one agent. The agent id is also the flagd flag key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(ROLLOUT_SCHEMA_VERSION, ge=1, le=ROLLOUT_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    agent_id: str = Field(..., min_length=1, max_length=128, description="The record key.")
    version: int = Field(..., ge=0, description="Increases by at least one with every change; never goes back.")
    rollout_id: str | None = Field(None, description="The rollout this flag belongs to; None when stable.")
    stage: RolloutStage = "stable"
    baseline: RolloutVariant
    candidate: RolloutVariant | None = None
    weights: dict[VariantName, int] = Field(
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
        if self.candidate is None and self.stage in ("canary", "paused", "promoted"):
            raise ValueError(f"stage {self.stage!r} needs a candidate variant")
        return self

    def follows(self, previous: "RolloutFlag | None") -> bool:
        """Whether this record may replace ``previous`` (same agent, a higher version)."""
        return previous is None or (self.agent_id == previous.agent_id and self.version > previous.version)

    @property
    def flag_key(self) -> str:
        return self.agent_id

    @property
    def candidate_weight(self) -> int:
        return self.weights.get("candidate", 0) if self.candidate is not None else 0


# --- canary analysis: configuration and the recorded decision ------------------------------------------------

Direction = Literal["lower_is_better", "higher_is_better", "band"]
Action = Literal["step", "promote", "rollback", "hold", "continue"]
Verdict = Literal["harm", "non_inferior", "inconclusive", "insufficient"]


class CanaryMetric(BaseModel):
    """One metric compared per conversation (the unit). Values are expected on a [0, scale] range."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(..., min_length=1)
    direction: Direction = Field(..., description="band: the candidate must stay within +-margin of the baseline.")
    margin: float = Field(..., gt=0, description="Non-inferiority margin in metric units (band half-width).")
    tau: float | None = Field(None, gt=0, description="Mixture scale of the test; default: twice the margin "
                                                           "(the effect size worth rolling back for).")
    threshold: float | None = Field(None, description="Tail metrics: the value becomes 1[x > threshold] "
                                                      "(e.g. latency above the baseline's pre-canary p95).")
    scale: float = Field(1.0, gt=0, description="Range of a value; floors the variance at small counts.")
    optional: bool = Field(False, description="Observed only sometimes (human/high-fidelity labels): while it has "
                                              "fewer than burn_in observations per arm it neither holds a step nor "
                                              "blocks promotion; once it has them it counts like any metric.")


class CanaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    metrics: tuple[CanaryMetric, ...] = Field(..., min_length=1)
    alpha: float = Field(0.05, gt=0, lt=1, description="Error rate of a rollout's rollback (Bonferroni over "
                         "metrics) and of its promotion (intersection-union).")
    steps: tuple[int, ...] = Field((5, 25, 50, 100), description="Candidate weights; reaching 100 is promotion.")
    min_conversations: int = Field(200, ge=1, description="Per arm, before any step or promotion.")
    min_conversations_per_step: int = Field(200, ge=1, description="Candidate conversations at a weight first.")
    burn_in: int = Field(50, ge=2, description="Per arm and metric, before its test may decide anything.")
    min_judge_coverage: float = Field(0.5, ge=0, le=1, description="Judged share per arm; below it: hold.")
    critical_max: int = Field(0, ge=0, description="Critical breaches the candidate may always show; beyond "
                              "them the circuit breaker trips once the candidate's breaches are more than the "
                              "baseline's rate explains (critical_alpha), or at once while the baseline has shown "
                              "none over critical_baseline_min conversations.")
    critical_alpha: float = Field(0.01, gt=0, lt=1, description="Chance that the circuit breaker trips, over every "
                                  "look of a rollout, on a candidate whose breach rate equals the baseline's.")
    critical_baseline_min: int = Field(500, ge=0, description="Baseline conversations without a breach after "
                                       "which the baseline counts as clean: a breach rate below about one in "
                                       "this many is treated as zero.")

    @model_validator(mode="after")
    def _steps(self) -> "CanaryConfig":
        s = self.steps
        if not s or s[-1] != 100 or any(b <= a for a, b in zip(s, s[1:])) or s[0] <= 0:
            raise ValueError(f"steps must increase from > 0 to 100, got {list(s)}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {names}")
        return self


class MetricResult(BaseModel):
    """One metric's test at one look. ``delta`` is oriented so that positive means the candidate is worse.

    Two confidence sequences around it: ``harm_*`` at ``alpha_harm`` (alpha / K: any harm rolls back, so the
    metrics share alpha) and ``ni_*`` at ``alpha_ni`` (alpha: promotion needs every metric non-inferior, an
    intersection-union test, which needs no split).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    direction: Direction
    margin: float
    n_baseline: int
    n_candidate: int
    mean_baseline: float | None
    mean_candidate: float | None
    delta: float | None
    harm_lower: float | None
    harm_upper: float | None
    ni_lower: float | None
    ni_upper: float | None
    alpha_harm: float
    alpha_ni: float
    verdict: Verdict


class ArmCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversations: int
    judged: int
    critical_breaches: int


class StepRecord(BaseModel):
    """One named step of the decision pipeline and what it found (Kayenta-style: every step is recorded)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    outcome: str
    detail: str = ""


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action
    reason: str
    weight: int = Field(..., description="Candidate weight the data was collected at.")
    next_weight: int = Field(..., description="Candidate weight after this decision.")
    decided_at: AwareDatetime
    counts: dict[VariantName, ArmCounts]
    metrics: list[MetricResult]
    steps: list[StepRecord]
    method: str
    # What the decision was about, when the caller passes the flag in force (the controller does).
    agent_id: str | None = None
    rollout_id: str | None = None
    flag_version: int | None = None
    candidate_adapter_hash: str | None = None


# --- the controller's decision log (``rollout.decisions``; mirrored to Delta ``rollouts`` and to ``audit.log``) ---

ControlAction = Literal["start", "step", "promote", "rollback", "hold", "pause", "resume"]


class RolloutDecisionRecord(BaseModel):
    """One decision of a rollout, written in the same Kafka transaction as the flag it produced (none for hold).

    ``decision_id`` = ``<rollout_id>:<flag_version>:<action>`` is unique: a flag version is made by exactly one
    decision, and a hold is recorded once per version. ``start_offsets`` (start only) say where the rollout's
    judged traffic begins, so a restarted controller rebuilds its analysis from the topic alone; ``offsets`` say
    how far the analysis had read when it decided (the next step's conversations are counted from there).
    """

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(ROLLOUT_SCHEMA_VERSION, ge=1, le=ROLLOUT_SCHEMA_VERSION)
    decision_id: str
    rollout_id: str
    agent_id: str
    action: ControlAction
    actor: str = Field(..., description="'controller' for automatic decisions, else the operator.")
    reason: str
    flag_version: int = Field(..., ge=0, description="The flag version this decision made (hold: in force).")
    stage: RolloutStage
    weight_before: int = Field(..., ge=0, le=100)
    weight_after: int = Field(..., ge=0, le=100)
    adapter_id: str | None = None
    adapter_hash: str | None = None
    baseline_policy_id: str
    candidate_policy_id: str | None = None
    counts: dict[str, ArmCounts] = Field(default_factory=dict)
    metrics: list[MetricResult] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    method: str = ""
    offsets: dict[str, dict[int, int]] = Field(default_factory=dict, description="topic -> partition -> next "
                                                                                 "offset read when deciding.")
    start_offsets: dict[str, dict[int, int]] = Field(default_factory=dict)
    config: dict | None = Field(None, description="start: the canary config in force for this rollout.")
    decided_at: AwareDatetime
