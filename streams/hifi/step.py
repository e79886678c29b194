"""The high-fidelity judge step: one escalation in, labels / preferences / human-queue items out.

Kafka-free and async; ``alignloop judge`` wraps it. Transient endpoint failures (``LlmJudgeError``, including
``BudgetExceeded``) propagate so the caller keeps the escalation and retries it later — nothing is dropped.
What the model cannot judge (garbage after retries, "unjudgeable", a verdict contradicting its own scores, low
confidence, inconsistent pairwise verdicts) goes to the human queue. Ids are deterministic, so a re-processed escalation yields the same rows.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from connectors.llm_judge import InconsistentVerdict, LlmJudgeClient, Unjudgeable
from schemas.escalation import EscalationEvent, HumanQueueItem
from schemas.preference import Label, Preference

MAX_PAIRWISE_CANDIDATES = 4


@dataclass
class HifiResult:
    event: EscalationEvent | None = None
    labels: list[Label] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    human: list[HumanQueueItem] = field(default_factory=list)


def _id(*parts: Any) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:32]


class HighFidelityJudge:
    def __init__(self, client: LlmJudgeClient):
        self.client = client
        self.cfg = client.cfg
        self.counts: dict[str, int] = {"judged": 0, "to_human": 0, "preferences": 0, "pairs_inconsistent": 0,
                                       "inconsistent": 0}

    def _human(self, out: HifiResult, ev: EscalationEvent, reason: str, rationale: str = "") -> None:
        self.counts["to_human"] += 1
        out.human.append(HumanQueueItem(trace_id=ev.judged.trace.trace_id, reason=reason, escalation=ev,
                                        llm_rationale=rationale[:2000]))

    async def handle(self, ev: EscalationEvent) -> HifiResult:
        out = HifiResult(event=ev)
        t = ev.judged.trace
        if ev.tier == "human":
            self._human(out, ev, "routed_to_human")
            return out
        try:
            j = await self.client.judge_trace(t)
        except InconsistentVerdict as exc:  # a verdict that contradicts its own scores is no label
            self.counts["inconsistent"] += 1
            self._human(out, ev, "llm_inconsistent_verdict", str(exc))
            return out
        except Unjudgeable as exc:
            self._human(out, ev, "llm_unjudgeable", str(exc))
            return out
        if j.confidence < self.cfg.min_confidence:
            self._human(out, ev, "llm_low_confidence", j.rationale)
        else:
            self.counts["judged"] += 1
            out.labels.append(Label(
                label_id=_id("llm", t.trace_id, self.cfg.model, self.cfg.judge_version), trace_id=t.trace_id,
                policy_id=t.policy_id, source="llm_judge", annotator=self.cfg.model, scores=j.scores,
                passed=j.passed, confidence=j.confidence, rationale=j.rationale[:4000],
                judge_version=self.cfg.judge_version))
        cands = [c for c in t.candidates[:MAX_PAIRWISE_CANDIDATES]]
        for i, k in itertools.combinations(range(len(cands)), 2):
            if cands[i] == cands[k]:
                continue
            try:
                pr = await self.client.judge_pair(t.user_message, cands[i], cands[k])
            except Unjudgeable as exc:
                self._human(out, ev, "pairwise_unjudgeable", str(exc))
                continue
            if pr.winner == "inconsistent":
                self.counts["pairs_inconsistent"] += 1
                self._human(out, ev, "pairwise_inconsistent", pr.rationale)
                continue
            if pr.winner == "tie":
                continue
            chosen, rejected = (i, k) if pr.winner == "i" else (k, i)
            self.counts["preferences"] += 1
            out.preferences.append(Preference(
                pref_id=_id("pair", t.trace_id, i, k, self.cfg.model, self.cfg.judge_version), prompt=t.user_message,
                candidates=cands, chosen_idx=chosen, rejected_idx=rejected, strength=pr.strength,
                rationale=pr.rationale, safety_tags=pr.safety_tags + j.safety_tags,
                metadata={"source": "llm_judge", "annotator": self.cfg.model, "trace_id": t.trace_id,
                          "conversation_id": t.conversation_id, "policy_id": t.policy_id,
                          "judge_version": self.cfg.judge_version, "position_swap": True}))
        return out
