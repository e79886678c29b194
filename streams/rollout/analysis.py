"""Canary analysis: candidate against baseline, the conversation as the unit, safe to look after every event.

Pure: the caller folds conversations into a `CanaryWindow` and passes the time in; `CanaryAnalyzer.decide`
returns a `Decision` (schemas/rollout.py) recording every step, statistic and count.

Method. Per metric the difference of per-conversation means, oriented so that positive is worse for the
candidate, gets an anytime-valid confidence sequence: the inversion of the mixture sequential probability ratio
test (mSPRT) with a normal mixture N(0, tau^2) over the effect (Robbins 1970; Johari, Koomen, Pekelis & Walsh,
"Peeking at A/B tests", KDD 2017, and "Always valid inference", Operations Research 2022). With V the plug-in
variance of the difference (var_c/n_c + var_b/n_b), a value theta is excluded once

    (delta - theta)^2 >= 2 V (V + tau^2) / tau^2 * (log(1/alpha) + 1/2 log((V + tau^2) / V)),

and the probability that the true difference is ever excluded, over all looks, is at most alpha. Plug-in
variances make this an asymptotic confidence sequence (Waudby-Smith, Arnold, Wu & Ramdas, "Time-uniform central
limit theory and asymptotic confidence sequences", Annals of Statistics 2024); a floor on each arm's variance
(a Bernoulli variance at one pseudo-event) keeps tiny counts from looking certain. Across the K metrics the
level for harm is alpha / K (Bonferroni), so the chance of any false rollback over the whole rollout is at most
alpha; promotion needs *every* metric non-inferior, an intersection-union test (Berger, Technometrics 1982),
so each non-inferiority bound uses alpha itself and a promotion of an inferior candidate still has chance <= alpha.

A metric is *harmful* when the sequence lies entirely above 0 (band metrics: entirely outside +-margin), and
*non-inferior* when it lies entirely below the margin (band: inside +-margin). Any harm rolls back; a step
needs no harm, enough conversations per arm and at the current weight, and judge coverage; promotion (the step
to 100) needs every metric non-inferior. Critical breaches (configured disallowed behaviours) trip a circuit
breaker and roll back at once, without waiting for the metric tests.

Circuit breaker. The candidate is compared with the baseline arm, not with zero: an A/A rollout whose baseline
itself breaches at some rate must not roll back. With k_c and k_b critical conversations out of n_c and n_b,
equal per-conversation rates make each breach the candidate's with probability s = n_c / (n_c + n_b) given the
total K = k_c + k_b (the exact conditional test of two Poisson rates, Przyborowski & Wilenski 1940). The
statistic is the likelihood ratio of that binomial, mixed uniformly over candidate shares p in (s, 1) (one-sided:
candidate worse), against p = s:

    M = [integral_s^1 p^k_c (1-p)^k_b dp / (1 - s)] / [s^k_c (1-s)^k_b]

a nonnegative martingale in the breaches under equal rates, so by Ville's inequality M ever reaches
1/critical_alpha with chance at most critical_alpha over all looks. It trips then. When the baseline has had no
breach in critical_baseline_min conversations it counts as clean and the first breach beyond critical_max trips
(a rate below about 1/critical_baseline_min is treated as zero); critical_max breaches are always allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import numpy as np

from schemas.rollout import (ArmCounts, CanaryConfig, CanaryMetric, Decision, MetricResult, RolloutFlag,
                             StepRecord, VariantName)

METHOD = ("mSPRT normal-mixture confidence sequences per metric; harm: Bonferroni across metrics; "
          "promotion: intersection-union non-inferiority")


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (Welford), mergeable."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @classmethod
    def of(cls, n: int, total: float, total_sq: float) -> "Moments":
        """From sums (vectorised callers): n, sum(x), sum(x^2)."""
        if n == 0:
            return cls()
        mean = total / n
        return cls(n, mean, max(0.0, total_sq - n * mean * mean))

    def variance(self, scale: float = 1.0) -> float:
        """Sample variance, floored at a Bernoulli variance with one pseudo-event in n + 2 (x scale^2)."""
        p = 1.0 / (self.n + 2)
        floor = scale * scale * p * (1 - p)
        return max(self.m2 / (self.n - 1) if self.n > 1 else 0.0, floor)


@dataclass
class ArmSummary:
    conversations: int = 0
    judged: int = 0
    critical_breaches: int = 0
    metrics: dict[str, Moments] = field(default_factory=dict)


@dataclass
class Conversation:
    """One finished conversation's outcome: metric values (None where that metric was not observed)."""

    values: Mapping[str, float | None]
    judged: bool = True
    critical: bool = False


@dataclass
class CanaryWindow:
    baseline: ArmSummary = field(default_factory=ArmSummary)
    candidate: ArmSummary = field(default_factory=ArmSummary)

    def arm(self, name: VariantName) -> ArmSummary:
        return self.candidate if name == "candidate" else self.baseline


def metric_value(metric: CanaryMetric, x: float) -> float:
    return float(x > metric.threshold) if metric.threshold is not None else float(x)


def half_width(v: float, tau: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence for a difference with variance ``v``."""
    t2 = tau * tau
    return math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))


def breaker_log_ratio(k_c: Any, n_c: Any, k_b: Any, n_b: Any) -> Any:
    """log M of the circuit breaker (module doc), elementwise over arrays too: large when the candidate has more
    of the critical breaches than its share of the conversations explains; 0 when it has no more than its share."""
    from scipy.special import betaincc, betaln

    k_c, n_c, k_b, n_b = (np.asarray(x, dtype=np.float64) for x in (k_c, n_c, k_b, n_b))
    total, n = k_c + k_b, n_c + n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(n > 0, n_c / np.maximum(n, 1), 0.5)
        live = (k_c > 0) & (n_c > 0) & (n_b > 0) & (k_c > s * total)
        s = np.where(live, s, 0.5)
        tail = np.log(np.maximum(betaincc(k_c + 1, k_b + 1, s), 1e-300))
        mix = betaln(k_c + 1, k_b + 1) + tail - np.log1p(-s)
        out = np.where(live, mix - (k_c * np.log(s) + k_b * np.log1p(-s)), 0.0)
    return float(out) if out.ndim == 0 else out


def breaker(cfg: CanaryConfig, b: "ArmSummary", c: "ArmSummary") -> str | None:
    """Why the circuit breaker trips (None: it holds)."""
    k_c, k_b = c.critical_breaches, b.critical_breaches
    if k_c <= cfg.critical_max:
        return None
    if k_b == 0 and b.conversations >= cfg.critical_baseline_min:
        return (f"{k_c} critical breaches > {cfg.critical_max} on the candidate, none in {b.conversations} "
                f"baseline conversations")
    log_m = breaker_log_ratio(k_c, c.conversations, k_b, b.conversations)
    if log_m >= math.log(1 / cfg.critical_alpha):
        return (f"{k_c} critical breaches in {c.conversations} candidate conversations against {k_b} in "
                f"{b.conversations} baseline ones (likelihood ratio {math.exp(min(log_m, 700)):.3g} >= "
                f"1/{cfg.critical_alpha:g})")
    return None


def compare_metric(metric: CanaryMetric, base: Moments, cand: Moments, alpha_harm: float, alpha_ni: float,
                   burn_in: int) -> MetricResult:
    common = dict(name=metric.name, direction=metric.direction, margin=metric.margin, n_baseline=base.n,
                  n_candidate=cand.n, alpha_harm=alpha_harm, alpha_ni=alpha_ni)
    if min(base.n, cand.n) < burn_in:
        return MetricResult(**common, mean_baseline=base.mean if base.n else None,
                            mean_candidate=cand.mean if cand.n else None, delta=None, harm_lower=None,
                            harm_upper=None, ni_lower=None, ni_upper=None, verdict="insufficient")
    diff = cand.mean - base.mean
    delta = -diff if metric.direction == "higher_is_better" else diff
    v = cand.variance(metric.scale) / cand.n + base.variance(metric.scale) / base.n
    tau = metric.tau or 2 * metric.margin
    hh, hn, m = half_width(v, tau, alpha_harm), half_width(v, tau, alpha_ni), metric.margin
    if metric.direction == "band":
        harm = delta - hh > m or delta + hh < -m
        ni = -m < delta - hn and delta + hn < m
    else:
        harm, ni = delta - hh > 0, delta + hn < m
    verdict = "harm" if harm else "non_inferior" if ni else "inconclusive"
    return MetricResult(**common, mean_baseline=base.mean, mean_candidate=cand.mean, delta=delta,
                        harm_lower=delta - hh, harm_upper=delta + hh, ni_lower=delta - hn, ni_upper=delta + hn,
                        verdict=verdict)


class CanaryAnalyzer:
    """Decides step / promote / rollback / hold / continue for one rollout from its `CanaryWindow`."""

    def __init__(self, config: CanaryConfig) -> None:
        self.config = config
        self._metrics = {m.name: m for m in config.metrics}

    def observe(self, window: CanaryWindow, arm: VariantName, conv: Conversation) -> None:
        """Fold one conversation into its arm. Unknown metric names are ignored (other analyzers' metrics)."""
        s = window.arm(arm)
        s.conversations += 1
        s.judged += conv.judged
        s.critical_breaches += conv.critical
        for name, x in conv.values.items():
            metric = self._metrics.get(name)
            if metric is None or x is None or not math.isfinite(x):
                continue
            s.metrics.setdefault(name, Moments()).add(metric_value(metric, x))

    def next_weight(self, weight: int) -> int:
        return next((s for s in self.config.steps if s > weight), 100)

    def decide(self, window: CanaryWindow, weight: int, at_weight: int, now: datetime,
               flag: RolloutFlag | None = None) -> Decision:
        """``weight``: the candidate's current weight; ``at_weight``: candidate conversations since it began;
        ``flag``: the flag in force, recorded in the decision (agent, rollout, version, adapter hash)."""
        cfg, b, c = self.config, window.baseline, window.candidate
        counts = {arm: ArmCounts(conversations=s.conversations, judged=s.judged,
                                 critical_breaches=s.critical_breaches) for arm, s in (("baseline", b),
                                                                                       ("candidate", c))}
        steps: list[StepRecord] = []
        alpha = cfg.alpha / len(cfg.metrics)
        results = [compare_metric(m, b.metrics.get(m.name, Moments()), c.metrics.get(m.name, Moments()), alpha,
                                  cfg.alpha, cfg.burn_in) for m in cfg.metrics]

        def done(action: str, reason: str, next_weight: int) -> Decision:
            steps.append(StepRecord(name="decide", outcome=action, detail=reason))
            about = {} if flag is None else dict(
                agent_id=flag.agent_id, rollout_id=flag.rollout_id, flag_version=flag.version,
                candidate_adapter_hash=flag.candidate.adapter_hash if flag.candidate else None)
            return Decision(action=action, reason=reason, weight=weight, next_weight=next_weight, decided_at=now,
                            counts=counts, metrics=results, steps=steps, method=METHOD, **about)

        tripped = breaker(cfg, b, c)
        if tripped:
            steps.append(StepRecord(name="circuit_breaker", outcome="tripped", detail=tripped))
            return done("rollback", f"circuit breaker: {c.critical_breaches} critical breaches on the candidate", 0)
        steps.append(StepRecord(name="circuit_breaker", outcome="ok"))
        verdicts = {r.name: r.verdict for r in results}
        steps.append(StepRecord(name="metric_tests", outcome="done", detail=", ".join(
            f"{k}={v}" for k, v in verdicts.items())))
        harmful = [r.name for r in results if r.verdict == "harm"]
        if harmful:
            return done("rollback", f"candidate worse on {', '.join(harmful)} (alpha {alpha:.4g} per metric)", 0)
        # Coverage is judged once an arm has burn_in conversations: a few unjudged ones at the start are noise.
        thin = [arm for arm, s in (("baseline", b), ("candidate", c))
                if s.conversations >= cfg.burn_in and s.judged / s.conversations < cfg.min_judge_coverage]
        if thin:
            steps.append(StepRecord(name="coverage", outcome="thin", detail=", ".join(thin)))
            return done("hold", f"judge coverage below {cfg.min_judge_coverage:.0%} on {', '.join(thin)}", weight)
        steps.append(StepRecord(name="coverage", outcome="ok"))
        n = min(b.conversations, c.conversations)
        if n < cfg.min_conversations or at_weight < cfg.min_conversations_per_step:
            steps.append(StepRecord(name="sample", outcome="collecting",
                                    detail=f"min arm {n}/{cfg.min_conversations}, at weight "
                                           f"{at_weight}/{cfg.min_conversations_per_step}"))
            return done("continue", "collecting conversations", weight)
        steps.append(StepRecord(name="sample", outcome="ok"))
        # An optional metric (labels "where they exist") without enough data neither holds nor blocks promotion.
        optional = {m.name for m in cfg.metrics if m.optional}
        missing = [r.name for r in results if r.verdict == "insufficient" and r.name not in optional]
        if missing:
            return done("hold", f"too few observations of {', '.join(missing)}", weight)
        nxt = self.next_weight(weight)
        if nxt < 100:
            return done("step", f"no harm detected; ramp {weight} -> {nxt}", nxt)
        open_ = [r.name for r in results if r.verdict != "non_inferior"
                 and not (r.verdict == "insufficient" and r.name in optional)]
        if open_:
            return done("continue", f"non-inferiority not shown yet for {', '.join(open_)}", weight)
        return done("promote", "non-inferior on every metric", 100)
