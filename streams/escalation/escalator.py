"""Escalation: which judged traces go to ``judge.escalations`` (pure logic, no Kafka, time passed in).

``assess`` turns a trace's fast verdicts (and the learning judge's prediction, when it has one) into a priority
in [0, 1] — the weighted max of five signals: fast-judge uncertainty on a pass, doubt about a fast failure,
learned doubt (a pass the learning judge thinks is bad, or a prediction inside its uncertainty band), risk tags,
and disagreement between judges; a pass the learning judge is sure about is damped (``learned_veto``) — plus
an unbiased random audit sample. ``offer`` queues candidates; ``drain`` admits the most informative first
within per-tier budgets (per minute, per hour) and a cap on the fraction of traffic, and drops what waited longer
than ``window_s`` (counted). Escalation rate and budget use are in ``stats()``.

Restarts: ``state()`` is the escalator as data (budgets, counters, and per source partition how far decisions
reach), published with every escalation it admits; ``restore`` continues from it, and ``replay`` says what to do
with a trace read again after a crash (skip it, or offer it once more without counting it twice). Time is the
stream's (passed in), so a restarted escalator spends the same budget per minute of traffic as one that ran on.
"""
from __future__ import annotations

import heapq
import itertools
import zlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.verdict import Verdict
from streams.escalation.config import EscalationConfig

MAX_INT = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Offset = Annotated[int, Field(ge=-1, le=MAX_INT)]
Tokens = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
Time = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e12)]
Source = tuple[str, int, int]  # (topic, partition, offset) of the trace in its source topic


class PartitionState(BaseModel):
    """How far the escalator's decisions reach in one source partition."""

    model_config = ConfigDict(extra="forbid", strict=True)
    topic: Annotated[str, Field(max_length=512)]
    partition: Count
    decided: Offset  # every trace up to here is decided for good (escalated or not)
    seen: Offset  # offered up to here; (decided, seen] were still pending: re-offered, not counted again
    admitted: Annotated[list[Offset], Field(max_length=100_000)]  # escalated ones in (decided, seen]


class EscalatorState(BaseModel):
    """The escalator as data: travels in a header of each record it publishes (see wiring.py)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    schema_version: Literal[1] = 1
    clock: Time
    fraction_tokens: Tokens
    buckets: dict[str, tuple[Tokens, Time, Tokens, Time]]  # tier -> minute (tokens, t), hour (tokens, t)
    partitions: list[PartitionState]
    counts: dict[str, Count]
    by_tier: dict[str, Count]
    by_reason: dict[str, Count]


@dataclass(slots=True)
class Assessment:
    priority: float
    reasons: list[str]
    tier: str = "llm"
    audit: bool = False


@dataclass(order=True, slots=True)
class _Pending:
    neg_priority: float
    seq: int
    seen_at: float = field(compare=False)
    tier: str = field(compare=False)
    assessment: Assessment = field(compare=False)
    payload: Any = field(compare=False)
    source: Source | None = field(compare=False, default=None)


@dataclass(slots=True)
class Escalation:
    payload: Any
    assessment: Assessment
    waited_s: float


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; starts full."""

    def __init__(self, capacity: float, rate: float, now: float = 0.0):
        if capacity < 0 or rate < 0:
            raise ValueError("capacity and rate must be >= 0")
        self.capacity, self.rate, self.tokens, self.t = capacity, rate, capacity, now

    def refill(self, now: float) -> None:
        if now > self.t:
            self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
            self.t = now

    def available(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


def _tag_matcher(patterns: Iterable[str]):  # type: ignore[no-untyped-def]
    exact = frozenset(p for p in patterns if not p.endswith(("*", ":")))
    prefixes = tuple(p.rstrip("*") for p in patterns if p.endswith(("*", ":")))

    def match(tag: str) -> bool:
        return tag in exact or (bool(prefixes) and tag.startswith(prefixes))
    return match


class Escalator:
    def __init__(self, cfg: EscalationConfig | None = None, *, now: float = 0.0):
        self.cfg = cfg = cfg or EscalationConfig()
        self._risky = _tag_matcher(cfg.risk_tags)
        self._human = _tag_matcher(cfg.human_tags)
        self._buckets = {name: (TokenBucket(b.per_minute, b.per_minute / 60.0, now),
                                TokenBucket(b.per_hour, b.per_hour / 3600.0, now)) for name, b in cfg.tiers.items()}
        self._fraction_tokens = 1.0
        self._fraction_cap = max(1.0, cfg.max_fraction * 10_000)
        self._pending: list[_Pending] = []
        self._seq = itertools.count()
        self.counts: dict[str, int] = {"seen": 0, "candidates": 0, "escalated": 0, "audit": 0,
                                       "dropped_low_priority": 0, "dropped_over_budget": 0, "dropped_overflow": 0}
        self.by_tier: dict[str, int] = {t: 0 for t in cfg.tiers}
        self.by_reason: dict[str, int] = {}
        self._seen: dict[tuple[str, int], int] = {}  # highest source offset offered, per partition
        self._admitted: dict[tuple[str, int], list[int]] = {}  # source offsets escalated, pruned in state()
        self._decided: dict[tuple[str, int], int] = {}  # from a restored state: decided for good up to here
        self._done: set[Source] = set()  # from a restored state: escalated beyond ``_decided``

    # -- scoring -------------------------------------------------------------------------------------------
    def is_audit(self, trace_id: str) -> bool:
        """Deterministic per trace id, so a replay audits the same traces."""
        return self.cfg.audit_rate > 0 and zlib.crc32(trace_id.encode()) / 2**32 < self.cfg.audit_rate

    def assess(self, trace_id: str, verdicts: list[Verdict], outcome: str,
               learned: tuple[float, float] | None = None) -> Assessment:
        """``learned`` = (pass probability, uncertainty) from the learning judge, when it is warm."""
        cfg, w = self.cfg, self.cfg.weights
        reasons: list[str] = []
        signals: dict[str, float] = {}
        ok = [v for v in verdicts if v.status == "ok"]
        if any(v.status == "error" for v in verdicts):
            signals["uncertainty"] = 1.0
            reasons.append("judge_error")
        if outcome == "pass":
            c = min((v.confidence for v in ok), default=1.0)
            if c < cfg.min_confidence:
                signals["uncertainty"] = max(signals.get("uncertainty", 0.0),
                                             0.5 + 0.5 * (cfg.min_confidence - c) / cfg.min_confidence)
                reasons.append("low_confidence_pass")
        else:
            c = min((v.confidence for v in ok if not v.passed), default=1.0)
            if c < cfg.confident_fail:
                signals["fail_doubt"] = 0.5 + 0.5 * (cfg.confident_fail - c) / cfg.confident_fail
                reasons.append("low_confidence_fail")
        damp = 1.0
        if learned is not None:
            p, unc = learned
            lo, hi = cfg.uncertainty_band
            if p > hi and outcome == "pass":
                # The learning judge is sure this pass is good: lower the other signals (the audit sample keeps
                # feeding it unbiased labels, so this veto cannot blind it for good).
                damp = 1.0 - (1.0 - unc) * cfg.learned_veto
            if outcome == "pass" and p < lo:
                signals["learned"] = 1.0 - p
                reasons.append("learned_disagrees_bad")
            elif outcome != "pass" and p > hi:
                signals["learned"] = 0.8 * p
                reasons.append("learned_disagrees_good")
            elif lo <= p <= hi:
                signals["learned_uncertain"] = unc
                reasons.append("learned_uncertain")
        tags = [t for v in ok for t in v.tags]
        risky = sorted({t for t in tags if self._risky(t)})
        # Risk and disagreement matter on passes (what the fast judges may have missed); a failure is already
        # flagged, and only its own doubt (fail_doubt) makes it worth a second opinion.
        if risky and outcome == "pass":
            signals["risk"] = 1.0
            reasons.append("risk_tags:" + ",".join(risky[:5]))
        dims: dict[str, tuple[float, float]] = {}
        for v in ok:
            for d, s in v.scores.items():
                lo_s, hi_s = dims.get(d, (s, s))
                dims[d] = (min(lo_s, s), max(hi_s, s))
        if outcome == "pass" and any(hi_s - lo_s >= cfg.disagreement_gap for lo_s, hi_s in dims.values()):
            signals["disagreement"] = 1.0
            reasons.append("judges_disagree")
        weighted = sorted((w.get(k, 1.0) * s * (damp if not k.startswith("learned") else 1.0)
                           for k, s in signals.items()), reverse=True)
        # The strongest signal, plus a little for each signal that agrees with it.
        priority = (weighted[0] + cfg.agreement_bonus * sum(x > 0 for x in weighted[1:])) if weighted else 0.0
        tier = "human" if "human" in cfg.tiers and any(self._human(t) for t in tags) else "llm"
        audit = self.is_audit(trace_id)
        if audit:
            reasons.append("audit_sample")
        return Assessment(min(1.0, round(priority, 6)), reasons, tier, audit)

    # -- queueing under budget -----------------------------------------------------------------------------
    def replay(self, source: Source) -> Literal["new", "skip", "again"]:
        """What to do with a trace from ``source``: 'new'; 'skip' (decided before a restart, or a duplicate);
        'again' (it was pending at the checkpoint: offer it with ``again=True``, its share is counted)."""
        key = (source[0], source[1])
        if source[2] <= self._decided.get(key, -1) or source in self._done:
            return "skip"
        if source[2] > self._seen.get(key, -1):
            return "new"
        if key not in self._decided:
            return "skip"  # no restore: the same offset read twice (a redelivered batch)
        self._done.add(source)  # re-offered once; a second copy is skipped
        return "again"

    def offer(self, payload: Any, assessment: Assessment, now: float, *, source: Source | None = None,
              again: bool = False) -> None:
        if source is not None:
            key = (source[0], source[1])
            self._seen[key] = max(source[2], self._seen.get(key, -1))
        if not again:  # a re-offered trace already earned its share of the budget
            self.counts["seen"] += 1
            self._fraction_tokens = min(self._fraction_cap, self._fraction_tokens + self.cfg.max_fraction)
        if assessment.priority < self.cfg.min_priority and not assessment.audit:
            if assessment.priority > 0:
                self.counts["dropped_low_priority"] += 1
            return
        self.counts["candidates"] += 1
        # Audit samples jump the queue: their value is in being unbiased, not informative.
        prio = 2.0 if assessment.audit else assessment.priority
        heapq.heappush(self._pending, _Pending(-prio, next(self._seq), now, assessment.tier, assessment, payload,
                                               source))
        if len(self._pending) > self.cfg.max_pending:
            worst = max(self._pending)  # the least informative (largest neg_priority), oldest on ties
            self._pending.remove(worst)
            heapq.heapify(self._pending)
            self.counts["dropped_overflow"] += 1

    def _budget_ok(self, tier: str, now: float, priority: float) -> bool:
        """One token from every budget, plus a reserve that shrinks with priority: a low-priority candidate only
        gets in while the budget is plentiful, so a scarce budget is kept for the most informative."""
        extra = (1.0 - min(priority, 1.0)) * self.cfg.reserve_tokens
        minute, hour = self._buckets[tier]
        minute.refill(now)
        hour.refill(now)
        return (self._fraction_tokens >= 1.0 + min(extra, self._fraction_cap - 1.0)
                and minute.tokens >= 1.0 + min(extra, minute.capacity - 1.0)
                and hour.tokens >= 1.0 + min(extra, hour.capacity - 1.0))

    def drain(self, now: float, *, flush: bool = False) -> list[Escalation]:
        """Admit the best pending candidates the budgets allow; drop those older than the window."""
        out: list[Escalation] = []
        keep: list[_Pending] = []
        while self._pending:
            item = heapq.heappop(self._pending)
            if self._budget_ok(item.tier, now, -item.neg_priority):
                for b in self._buckets[item.tier]:
                    b.take()
                self._fraction_tokens -= 1.0
                self.counts["escalated"] += 1
                self.counts["audit"] += item.assessment.audit
                self.by_tier[item.tier] += 1
                for r in item.assessment.reasons:
                    key = r.split(":", 1)[0]
                    self.by_reason[key] = self.by_reason.get(key, 0) + 1
                if item.source is not None:
                    self._admitted.setdefault((item.source[0], item.source[1]), []).append(item.source[2])
                out.append(Escalation(item.payload, item.assessment, now - item.seen_at))
            elif flush or now - item.seen_at >= self.cfg.window_s:
                self.counts["dropped_over_budget"] += 1
            else:
                keep.append(item)
        for item in keep:
            heapq.heappush(self._pending, item)
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)

    def budget_left(self, now: float) -> dict[str, dict[str, float]]:
        out = {}
        for tier, (minute, hour) in self._buckets.items():
            minute.refill(now)
            hour.refill(now)
            out[tier] = {"minute": minute.tokens, "hour": hour.tokens}
        return out

    def stats(self) -> dict[str, Any]:
        seen = self.counts["seen"]
        return {**self.counts, "by_tier": dict(self.by_tier), "by_reason": dict(self.by_reason),
                "escalation_rate": self.counts["escalated"] / seen if seen else 0.0}

    # -- restarts ------------------------------------------------------------------------------------------
    def state(self, clock: float) -> EscalatorState:
        """The escalator as data. Per partition, decisions are final up to just before the oldest candidate
        still pending; escalated offsets after that point are listed, so a replay skips exactly those."""
        oldest: dict[tuple[str, int], int] = {}
        for item in self._pending:
            if item.source is not None:
                k = (item.source[0], item.source[1])
                oldest[k] = min(item.source[2], oldest.get(k, item.source[2]))
        parts = []
        for k, seen in sorted(self._seen.items()):
            decided = max(oldest.get(k, seen + 1) - 1, self._decided.get(k, -1))
            admitted = self._admitted[k] = [o for o in self._admitted.get(k, []) if o > decided]
            parts.append(PartitionState(topic=k[0], partition=k[1], decided=decided, seen=seen,
                                        admitted=admitted))
        buckets = {t: (m.tokens, m.t, h.tokens, h.t) for t, (m, h) in self._buckets.items()}
        return EscalatorState(clock=clock, fraction_tokens=self._fraction_tokens, buckets=buckets, partitions=parts,
                              counts=dict(self.counts), by_tier=dict(self.by_tier), by_reason=dict(self.by_reason))

    def restore(self, s: EscalatorState) -> None:
        """Continue from ``s`` (its budgets clamped to this config's capacities)."""
        self._fraction_tokens = min(self._fraction_cap, s.fraction_tokens)
        for tier, (mt, mtime, ht, htime) in s.buckets.items():
            if tier in self._buckets:
                minute, hour = self._buckets[tier]
                minute.tokens, minute.t = min(minute.capacity, mt), mtime
                hour.tokens, hour.t = min(hour.capacity, ht), htime
        for p in s.partitions:
            k = (p.topic, p.partition)
            self._decided[k], self._seen[k] = p.decided, max(p.seen, p.decided)
            self._done.update((p.topic, p.partition, o) for o in p.admitted)
            self._admitted[k] = list(p.admitted)
        for name in self.counts:
            self.counts[name] = s.counts.get(name, 0)
        self.by_tier.update({t: n for t, n in s.by_tier.items() if t in self.by_tier})
        self.by_reason = dict(s.by_reason)
