"""Human-queue records and simulated annotators of known reliability, for ``alignloop bench ui`` and the tests."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from schemas.escalation import EscalationEvent, HumanQueueItem
from schemas.trace import ToolCall, Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict


def human_queue_item(i: int, *, pair: bool = False, text: str = "", judge_passed: bool = True,
                     tag: str = "t") -> HumanQueueItem:
    """A scrubbed trace on judge.human_queue (with candidates when ``pair``), a tool call and a judge verdict."""
    now = datetime.now(timezone.utc)
    trace = Trace(trace_id=f"{tag}{i:07d}", conversation_id=f"c{i:07d}", agent_id="support", policy_id="p1",
                  user_message=text or f"How do I reset my router? (case {i})",
                  final_response=f"Unplug it for ten seconds, then plug it back in. ({i})",
                  tool_calls=[ToolCall(name="kb_search", args={"q": "router reset"}, result={"hits": 2})],
                  candidates=[f"Hold the reset button for 10 s. ({i})", f"Call support. ({i})"] if pair else [])
    jt = JudgedTrace(trace=trace, outcome="flag", source=SourceRef(topic="traces.judged", partition=0, offset=i),
                     processed_at=now, verdicts=[Verdict(judge="policy", passed=judge_passed, confidence=0.55,
                                                         reasons=["borderline advice"]),
                                                 Verdict(judge="quality", passed=True, confidence=0.6)])
    esc = EscalationEvent(judged=jt, priority=1.0, reasons=["risk:medium"], tier="human")
    return HumanQueueItem(trace_id=trace.trace_id, reason="routed_to_human", escalation=esc, queued_at=now)


@dataclass
class SimAnnotator:
    """Answers the truth with probability ``accuracy`` (else the other answer); ``left_bias`` picks the left side
    regardless (position bias); ``accuracy=0.5`` is a coin flip, a random annotator."""
    name: str
    accuracy: float = 0.9
    left_bias: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}:{self.seed}")

    def pairwise(self, truth_idx: int, swapped: bool) -> dict[str, str]:
        """The form for a pairwise item whose better candidate is ``truth_idx`` (sides as served)."""
        if self.left_bias:
            side = "left"
        else:
            chosen = truth_idx if self.rng.random() < self.accuracy else 1 - truth_idx
            side = "left" if (chosen ^ int(swapped)) == 0 else "right"
        return {"choice": side, "strength": str(self.rng.randint(1, 4))}

    def score_card(self, truth_pass: bool, dims: list[Any]) -> dict[str, str]:
        ok = truth_pass if self.rng.random() < self.accuracy else not truth_pass
        form = {}
        for d in dims:
            if d.scale == "binary":
                form[f"score_{d.name}"] = "2" if ok else "1"
            else:
                form[f"score_{d.name}"] = str(self.rng.randint(5, 7) if ok else self.rng.randint(1, 3))
        return form


def crowd(seed: int = 0, n_good: int = 4) -> list[SimAnnotator]:
    return [SimAnnotator(f"good{i}", 0.9, seed=seed) for i in range(n_good)] + [
        SimAnnotator("random", 0.5, seed=seed), SimAnnotator("lefty", 0.5, left_bias=True, seed=seed)]


def truth_of(item_id: str) -> int:
    """The hidden truth of a simulated item: the better candidate index (and pass when 0)."""
    return int(item_id[-1]) % 2
