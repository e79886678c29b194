"""Simulated judged traffic with a known truth, and the three canary policies the bench compares.

Traffic comes in chunks of conversations; each conversation has per-conversation metric values as alignloop's
judges and traces would give them (a judge score, task success, a safety violation, a refusal, a tool error,
latency, an escalation), with a share of conversations left unjudged. The candidate differs from the baseline
only by its profile. On a real fleet the behaviour comes from the model; here it comes from these numbers.

Policies (each returns how the rollout ended and after how many conversations):
- ``alignloop``: `streams.rollout.analysis.CanaryAnalyzer` on cumulative per-arm moments, looking every
  ``look`` conversations (its test is anytime-valid, so looking often costs nothing).
- ``flagger``: Flagger's published analysis (docs "How it works"): every interval each metric of the *canary*
  is checked against a fixed threshold range; a failed check increments a counter and the rollout rolls back
  once it reaches ``threshold`` (5); a passing interval advances the weight by ``stepWeight`` (5) up to
  ``maxWeight`` (50), after which the next passing check promotes. Thresholds are baseline + k x margin, with k
  the smallest on a grid whose A/A false-rollback rate is <= 0.05 on a separate calibration run.
- ``kayenta``: Kayenta's NetflixACAJudge: per interval, per metric, a Mann-Whitney test (98% confidence) between
  the control's and the experiment's time series (here: sub-window means, ten per interval), classified High /
  Low when significant and the Hodges-Lehmann shift exceeds 25% of the control's mean; score = share of metrics
  passing; score < 75 (marginal) or a critical metric failing rolls back, score >= 95 (pass) steps the same
  plan as alignloop (5, 25, 50, then promote).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from schemas.rollout import CanaryConfig, CanaryMetric
from streams.rollout.analysis import ArmSummary, CanaryAnalyzer, CanaryWindow, Moments

LATENCY_SIGMA = 0.5
BASE_LATENCY_MS = 1200.0
LATENCY_P95 = BASE_LATENCY_MS * math.exp(1.6449 * LATENCY_SIGMA)  # the baseline's p95, known before the canary
JUDGE_METRICS = ("helpfulness", "task_success", "safety_violation", "refusal")


@dataclass(frozen=True)
class Profile:
    helpfulness: float = 0.80  # mean judge score (normal, sd 0.12, clipped to [0, 1])
    task_success: float = 0.80
    safety_violation: float = 0.01
    refusal: float = 0.05
    tool_error: float = 0.03
    latency_factor: float = 1.0
    escalation: float = 0.08
    critical: float = 0.0  # disallowed behaviours (circuit breaker)
    judge_coverage: float = 0.95


BASELINE = Profile()
SCENARIOS: dict[str, Profile] = {
    "aa": BASELINE,
    "safety_1_to_3pct": replace(BASELINE, safety_violation=0.03),
    "task_success_minus_0.05": replace(BASELINE, task_success=0.75),
    "latency_plus_30pct": replace(BASELINE, latency_factor=1.3),
    "improved": replace(BASELINE, helpfulness=0.83, task_success=0.83, safety_violation=0.007, latency_factor=0.9),
}

CONFIG = CanaryConfig(
    metrics=(
        CanaryMetric(name="helpfulness", direction="higher_is_better", margin=0.02),
        CanaryMetric(name="task_success", direction="higher_is_better", margin=0.02),
        CanaryMetric(name="safety_violation", direction="lower_is_better", margin=0.005),
        CanaryMetric(name="refusal", direction="band", margin=0.02),
        CanaryMetric(name="tool_error", direction="lower_is_better", margin=0.01),
        CanaryMetric(name="latency_p95", direction="lower_is_better", margin=0.03, threshold=LATENCY_P95),
        CanaryMetric(name="escalation", direction="lower_is_better", margin=0.02),
    ),
    alpha=0.05, steps=(5, 25, 50, 100), min_conversations=200, min_conversations_per_step=200, burn_in=50,
    min_judge_coverage=0.5, critical_max=0)
NAMES = tuple(m.name for m in CONFIG.metrics)
HIGHER_BETTER = {m.name: m.direction == "higher_is_better" for m in CONFIG.metrics}
BASE_MEANS = {"helpfulness": 0.80, "task_success": 0.80, "safety_violation": 0.01, "refusal": 0.05,
              "tool_error": 0.03, "latency_p95": 0.05, "escalation": 0.08}


@dataclass
class Outcome:
    action: str  # rollback | promote | undecided
    conversations: int
    candidate_conversations: int


def generate(rng: np.random.Generator, n: int, p: Profile) -> dict[str, np.ndarray]:
    """Per-conversation metric values (latency already as the p95 exceedance); NaN where not judged."""
    judged = rng.random(n) < p.judge_coverage
    out = {
        "helpfulness": np.clip(rng.normal(p.helpfulness, 0.12, n), 0, 1),
        "task_success": (rng.random(n) < p.task_success).astype(float),
        "safety_violation": (rng.random(n) < p.safety_violation).astype(float),
        "refusal": (rng.random(n) < p.refusal).astype(float),
        "tool_error": (rng.random(n) < p.tool_error).astype(float),
        "latency_p95": (BASE_LATENCY_MS * p.latency_factor * np.exp(rng.normal(0, LATENCY_SIGMA, n))
                        > LATENCY_P95).astype(float),
        "escalation": (rng.random(n) < p.escalation).astype(float),
    }
    for name in JUDGE_METRICS:
        out[name][~judged] = np.nan
    out["_judged"] = judged
    out["_critical"] = rng.random(n) < p.critical
    return out


class Arm:
    """Running sums per metric for one arm (what the stream consumer will keep)."""

    def __init__(self) -> None:
        self.conversations = self.judged = self.critical = 0
        self.sums = {k: [0, 0.0, 0.0] for k in NAMES}

    def add(self, data: dict[str, np.ndarray], mask: np.ndarray) -> None:
        self.conversations += int(mask.sum())
        self.judged += int(data["_judged"][mask].sum())
        self.critical += int(data["_critical"][mask].sum())
        for k in NAMES:
            x = data[k][mask]
            x = x[~np.isnan(x)]
            s = self.sums[k]
            s[0] += x.size
            s[1] += float(x.sum())
            s[2] += float((x * x).sum())

    def summary(self) -> ArmSummary:
        return ArmSummary(conversations=self.conversations, judged=self.judged, critical_breaches=self.critical,
                          metrics={k: Moments.of(*v) for k, v in self.sums.items()})


def run_alignloop(rng: np.random.Generator, cand: Profile, horizon: int, look: int,
                  analyzer: CanaryAnalyzer) -> Outcome:
    base_arm, cand_arm = Arm(), Arm()
    weight, at_weight, seen = analyzer.config.steps[0], 0, 0
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    while seen < horizon:
        to_cand = rng.random(look) < weight / 100
        b, c = generate(rng, look, BASELINE), generate(rng, look, cand)
        base_arm.add(b, ~to_cand)
        cand_arm.add(c, to_cand)
        seen += look
        at_weight += int(to_cand.sum())
        d = analyzer.decide(CanaryWindow(base_arm.summary(), cand_arm.summary()), weight, at_weight, now)
        if d.action in ("rollback", "promote"):
            return Outcome(d.action, seen, cand_arm.conversations)
        if d.action == "step":
            weight, at_weight = d.next_weight, 0
    return Outcome("undecided", seen, cand_arm.conversations)


def _interval_means(data: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    out = {}
    for k in NAMES:
        x = data[k][mask]
        x = x[~np.isnan(x)]
        out[k] = float(x.mean()) if x.size else math.nan
    return out


def flagger_thresholds(k: float) -> dict[str, tuple[float, float]]:
    """Fixed per-metric ranges an operator would set: baseline level +- k margins on the bad side(s)."""
    limits = {}
    for m in CONFIG.metrics:
        base, width = BASE_MEANS[m.name], k * m.margin
        if m.direction == "higher_is_better":
            limits[m.name] = (base - width, math.inf)
        elif m.direction == "lower_is_better":
            limits[m.name] = (-math.inf, base + width)
        else:
            limits[m.name] = (base - width, base + width)
    return limits


def run_flagger(rng: np.random.Generator, cand: Profile, horizon: int, interval: int,
                limits: dict[str, tuple[float, float]],
                threshold: int = 5, step_weight: int = 5, max_weight: int = 50) -> Outcome:
    weight, failed, seen, n_cand = step_weight, 0, 0, 0
    while seen < horizon:
        to_cand = rng.random(interval) < weight / 100
        c = generate(rng, interval, cand)
        seen += interval
        n_cand += int(to_cand.sum())
        means = _interval_means(c, to_cand)
        ok = all(math.isnan(v) or limits[k][0] <= v <= limits[k][1]
                 for k, v in means.items()) and not c["_critical"][to_cand].any()
        if not ok:
            failed += 1
            if failed >= threshold:
                return Outcome("rollback", seen, n_cand)
        elif weight >= max_weight:
            return Outcome("promote", seen, n_cand)
        else:
            weight = min(max_weight, weight + step_weight)
    return Outcome("undecided", seen, n_cand)


def _kayenta_fails(base: np.ndarray, cand: np.ndarray, name: str, conf: float = 0.98,
                   tolerance: float = 0.25) -> bool:
    """One metric, one interval: Mann-Whitney on sub-window means + Kayenta's tolerance on the HL shift."""
    from scipy.stats import mannwhitneyu

    base, cand = base[~np.isnan(base)], cand[~np.isnan(cand)]
    if base.size < 3 or cand.size < 3:
        return False  # Kayenta: no data, not a failure
    shift = float(np.median(cand[:, None] - base[None, :]))  # Hodges-Lehmann estimate
    if abs(shift) <= tolerance * abs(float(base.mean())):
        return False
    if mannwhitneyu(cand, base, alternative="two-sided").pvalue >= 1 - conf:
        return False
    direction = next(m.direction for m in CONFIG.metrics if m.name == name)
    return direction == "band" or (shift < 0) == (direction == "higher_is_better")


def run_kayenta(rng: np.random.Generator, cand: Profile, horizon: int, interval: int, windows: int = 10,
                marginal: float = 75.0, passing: float = 95.0, critical: tuple[str, ...] = ("safety_violation",),
                steps: tuple[int, ...] = (5, 25, 50)) -> Outcome:
    stage, seen, n_cand = 0, 0, 0
    size = interval // windows
    while seen < horizon:
        weight = steps[stage]
        b_means = {k: np.empty(windows) for k in NAMES}
        c_means = {k: np.empty(windows) for k in NAMES}
        breach = False
        for w in range(windows):
            to_cand = rng.random(size) < weight / 100
            b, c = generate(rng, size, BASELINE), generate(rng, size, cand)
            n_cand += int(to_cand.sum())
            breach |= bool(c["_critical"][to_cand].any())
            for k, v in _interval_means(b, ~to_cand).items():
                b_means[k][w] = v
            for k, v in _interval_means(c, to_cand).items():
                c_means[k][w] = v
        seen += interval
        fails = [k for k in NAMES if _kayenta_fails(b_means[k], c_means[k], k)]
        score = 100.0 * (len(NAMES) - len(fails)) / len(NAMES)
        if breach or score < marginal or any(k in critical for k in fails):
            return Outcome("rollback", seen, n_cand)
        if score >= passing:
            if stage == len(steps) - 1:
                return Outcome("promote", seen, n_cand)
            stage += 1
    return Outcome("undecided", seen, n_cand)
