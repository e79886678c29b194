"""Rollout controller settings, loaded from ``configs/rollout.yaml`` (``ALIGNLOOP_ROLLOUT_CONFIG``).

The canary section is the analyzer's `CanaryConfig` (schemas/rollout.py): metrics with their margins, alpha,
steps, minimum conversations, burn-in, judge coverage, the circuit breaker's allowance. The rest says how the
controller reads traffic: which verdict tags are critical breaches, how often it looks, where the latency
threshold comes from. A missing default file means the defaults below; a bad field is one ConfigError line.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas.rollout import CanaryConfig, CanaryMetric
from schemas.settings import ConfigError, load_yaml_config

DEFAULT_PATH = "configs/rollout.yaml"
ROLLOUT_CONFIG_ENV = "ALIGNLOOP_ROLLOUT_CONFIG"  # Settings.rollout_config, named in messages
LATENCY_METRIC = "latency_p95"


def default_metrics() -> tuple[CanaryMetric, ...]:
    """Every judge dimension, violations, refusals (band), tool errors, latency p95, escalations, labels."""
    dims = ("task_success", "helpfulness", "safety", "policy_compliance", "tool_correctness")
    return (CanaryMetric(name="judge_score", direction="higher_is_better", margin=0.02),
            *(CanaryMetric(name=f"score.{d}", direction="higher_is_better", margin=0.03) for d in dims),
            CanaryMetric(name="violation", direction="lower_is_better", margin=0.005),
            CanaryMetric(name="refusal", direction="band", margin=0.02),
            CanaryMetric(name="tool_error", direction="lower_is_better", margin=0.01),
            CanaryMetric(name=LATENCY_METRIC, direction="lower_is_better", margin=0.03),
            CanaryMetric(name="escalation", direction="lower_is_better", margin=0.02),
            CanaryMetric(name="label_pass", direction="higher_is_better", margin=0.05, optional=True))


class RolloutControlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    canary: CanaryConfig = Field(default_factory=lambda: CanaryConfig(metrics=default_metrics()))
    critical_tags: list[str] = Field(default_factory=lambda: ["disallowed:*"], description=(
        "Verdict tags (fnmatch patterns) that are critical breaches: on the candidate beyond canary.critical_max "
        "they roll back at once."))
    look_every_s: float = Field(2.0, gt=0, description="Seconds between two analyses of a rollout.")
    latency_threshold_ms: float | None = Field(None, gt=0, description=(
        "Latency above which a turn counts as slow; unset: the baseline's p95 over the judged traces before the "
        "rollout started (recorded in its start decision)."))
    latency_reference_traces: int = Field(2000, ge=20, description="Recent baseline turns the p95 is taken from.")
    latency_fallback_ms: float = Field(2000.0, gt=0, description="Threshold when too few baseline turns exist.")
    hold_alert_s: float = Field(1800.0, gt=0, description="A rollout on hold this long is 'stuck' (alert).")
    default_baseline_policy: str = Field("base", min_length=1, description=(
        "Baseline of an agent that has no flag yet: the policy its traces carry (Trace.policy_id's default)."))
    max_tracked_traces: int = Field(2_000_000, ge=1000, description="Trace ids remembered per rollout so labels "
                                                                     "can be attributed; older ones are dropped.")


def load_rollout_config(path: str | Path | None = None) -> RolloutControlConfig:
    """The rollout config at ``path`` (``Settings.rollout_config``); None: configs/rollout.yaml, or the defaults
    when that file is absent. A missing named file or a bad field is a one-line ConfigError naming the fix."""
    p = Path(path) if path is not None else Path(DEFAULT_PATH)
    if not p.is_file():
        if path is not None:
            raise ConfigError(f"rollout config {p} not found; fix {ROLLOUT_CONFIG_ENV} or create the file")
        return RolloutControlConfig()
    return load_yaml_config(RolloutControlConfig, p, "rollout config", f"fix the file or {ROLLOUT_CONFIG_ENV}")
