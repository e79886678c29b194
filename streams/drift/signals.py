"""Per-trace signal values the drift monitors watch. Pure functions of a ``JudgedTrace``.

Scalar signals give one float per trace (or none when the trace says nothing about it, e.g. tool errors of a
trace without tool calls). Embedding signals give one hashed bag-of-words vector per text field; the monitor
turns blocks of them into one distance (see ``embedding.py``).
"""
from __future__ import annotations

import math
import re

from schemas.verdict import JudgedTrace
from streams.drift.config import SignalsConfig

# Refusals open the answer; read the first words only (cheap, and quoted refusals later on do not count).
_REFUSAL = re.compile(r"^\s*(?:sorry[,.!]?\s*)?(?:i\s+(?:can(?:'|no)?t|cannot|won'?t|will\s+not|am\s+not\s+able|"
                      r"'m\s+not\s+able|must\s+decline)|i'm\s+sorry,?\s+but\s+i\s+can)", re.IGNORECASE)

SCALAR_SIGNALS = ("refusal", "tool_error", "latency", "pii", "escalation", "response_length")


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text[:120]))


def scalar_signals(j: JudgedTrace, cfg: SignalsConfig) -> dict[str, float]:
    """Signal name -> value for one judged trace."""
    t = j.trace
    out: dict[str, float] = {
        "refusal": 1.0 if is_refusal(t.final_response) else 0.0,
        "latency": math.log1p(max(0.0, t.latency_ms)),   # log: latency is heavy-tailed, block means need ~normal
        "pii": 1.0 if j.pii else 0.0,
        "response_length": math.log1p(len(t.final_response)),
    }
    if t.tool_calls:
        out["tool_error"] = 1.0 if any(c.status != "ok" for c in t.tool_calls) else 0.0
    escalated = j.outcome != "pass" or any(
        v.status == "ok" and v.confidence < cfg.escalation_confidence_below for v in j.verdicts)
    out["escalation"] = 1.0 if escalated else 0.0
    if cfg.judge_scores:
        for v in j.verdicts:
            if v.status != "ok":
                continue
            for dim, s in v.scores.items():
                out[f"score:{v.judge}.{dim}"] = float(s)
    return out


def texts(j: JudgedTrace) -> dict[str, str]:
    """The texts embedding signals read: the (scrubbed) prompt and response."""
    return {"prompt": j.trace.user_message, "response": j.trace.final_response}
