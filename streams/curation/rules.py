"""Curation: turn judged traces and preferences into rows of the Delta tables ``sft_examples`` and ``preferences``.

Pure row builders (no Kafka, no Delta). SFT candidates are traces every fast judge passed, policy-clean (no
risk, PII or tool-failure tags), with a high aggregate score and confidence. Preference pairs come from a trace's
candidates when the fast judges separate them clearly (a judged winner), and from Preference events (LLM
pairwise judgements, the SDK, humans). Every row carries the judge versions that made it.

Defence in depth: the text of every row (prompt, response, candidates, rationale) goes through the strict scrub
tier (``streams/scrub/strict.py``) on top of the stream's scrubbing, since this is what models are trained on.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field

from schemas.preference import Label, Preference
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict
from streams.judges import aggregate
from streams.judges.base import Judge, run_judges
from streams.scrub.strict import strict_text, strict_value

# Tags that keep a passing trace out of the SFT set even though no judge failed it.
DIRTY_TAG_PREFIXES = ("risk:", "pii", "tool_", "toxicity:", "quality:", "learned:", "refusal:borderline")


class CurationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sft_min_score: float = Field(0.8, ge=0, le=1, description="Lowest per-dimension score an SFT example may have.")
    sft_min_confidence: float = Field(0.7, ge=0, le=1, description="Least confident verdict an SFT example may have.")
    pair_min_gap: float = Field(0.3, gt=0, le=1, description="Score gap for a fast-judged candidate winner.")


def _dump(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str)


def judge_versions(verdicts: Iterable[Verdict]) -> dict[str, str]:
    return {v.judge: v.judge_version for v in verdicts}


def render_prompt(trace: Trace) -> str:
    """The prompt with its context rendered in (already scrubbed)."""
    if not trace.context:
        return trace.user_message
    ctx = "\n".join(f"[{c.role}] {c.content}" for c in trace.context)
    return f"{ctx}\n\n[user] {trace.user_message}"


def trace_score(verdicts: Iterable[Verdict]) -> float:
    scores = [s for v in verdicts if v.status == "ok" for s in v.scores.values()]
    return min(scores) if scores else 0.0


def sft_row(jt: JudgedTrace, cfg: CurationConfig | None = None, *, now: datetime | None = None
            ) -> dict[str, Any] | None:
    """An ``sft_examples`` row, or None when the trace is not a clean, high-scoring example."""
    cfg = cfg or CurationConfig()
    t, vs = jt.trace, jt.verdicts
    if jt.outcome != "pass" or not t.final_response.strip() or any(v.status == "error" for v in vs):
        return None
    ok = [v for v in vs if v.status == "ok"]
    if not ok or any(not v.passed for v in ok) or any(tag.startswith(DIRTY_TAG_PREFIXES) for v in ok for tag in v.tags):
        return None
    score, conf = trace_score(ok), min(v.confidence for v in ok)
    if score < cfg.sft_min_score or conf < cfg.sft_min_confidence:
        return None
    return {"example_id": t.trace_id, "trace_id": t.trace_id, "conversation_id": t.conversation_id,
            "policy_id": t.policy_id, "prompt": strict_text(render_prompt(t)), "response": strict_text(t.final_response),
            "domain": str(t.metadata.get("domain") or t.agent_id), "score": score, "confidence": conf,
            "judge_versions_json": _dump(judge_versions(vs)), "date": t.timestamp.date().isoformat(),
            "src_topic": jt.source.topic, "src_partition": jt.source.partition, "src_offset": jt.source.offset,
            "created_at": now or datetime.now(timezone.utc)}


def judged_candidate_preference(jt: JudgedTrace, judges: list[Judge], cfg: CurationConfig | None = None
                                ) -> Preference | None:
    """Judge each candidate with the fast judges; a clear winner over the worst makes a preference."""
    cfg = cfg or CurationConfig()
    t = jt.trace
    cands = [c for c in t.candidates if isinstance(c, str)]
    if len(cands) < 2 or len(set(cands)) < 2:
        return None
    results = []
    for c in cands:
        tc = t.model_copy(update={"final_response": c})
        vs = run_judges(judges, tc)
        results.append((trace_score(vs) if aggregate(vs) == "pass" else trace_score(vs) / 2, vs))
    best = max(range(len(cands)), key=lambda i: results[i][0])
    worst = min(range(len(cands)), key=lambda i: results[i][0])
    gap = results[best][0] - results[worst][0]
    if best == worst or gap < cfg.pair_min_gap:
        return None
    loser_reasons = [f"{v.judge}: {r}" for v in results[worst][1] if v.status == "ok" and not v.passed for r in v.reasons]
    tags = sorted({tag for v in results[worst][1] if v.status == "ok" and not v.passed for tag in v.tags})
    return Preference(
        pref_id=f"fast:{t.trace_id}:{best}:{worst}", prompt=render_prompt(t), candidates=cands, chosen_idx=best,
        rejected_idx=worst, strength=round(min(1.0, gap), 4),
        rationale="; ".join(loser_reasons)[:2000] or "fast judges scored the chosen candidate higher",
        safety_tags=tags, created_at=t.timestamp,
        metadata={"source": "rule", "annotator": "fast_judges", "trace_id": t.trace_id,
                  "conversation_id": t.conversation_id, "policy_id": t.policy_id,
                  "judge_versions": judge_versions(results[best][1])})


def preference_row(p: Preference, source: SourceRef, *, judge_versions_: dict[str, str] | None = None
                   ) -> dict[str, Any]:
    """A ``preferences`` row (seed-000 schema) from a Preference event."""
    md = dict(p.metadata)
    versions = judge_versions_ or md.get("judge_versions") or (
        {md.get("annotator") or "unknown": md["judge_version"]} if "judge_version" in md else {})
    candidates = strict_value(list(p.candidates))
    return {"pref_id": p.pref_id, "prompt": strict_text(p.prompt), "candidates": candidates,
            "chosen_idx": p.chosen_idx, "rejected_idx": p.rejected_idx, "chosen": candidates[p.chosen_idx],
            "rejected": candidates[p.rejected_idx], "strength": p.strength, "rationale": strict_text(p.rationale),
            "safety_tags": p.safety_tags, "source": str(md.get("source", "")), "annotator": str(md.get("annotator", "")),
            "trace_id": md.get("trace_id"), "conversation_id": md.get("conversation_id"),
            "policy_id": md.get("policy_id"), "judge_versions_json": _dump(versions), "metadata_json": _dump(md),
            "date": p.created_at.date().isoformat(), "src_topic": source.topic, "src_partition": source.partition,
            "src_offset": source.offset, "created_at": p.created_at}


def sft_row_from_label(jt: JudgedTrace, label: Label, cfg: CurationConfig | None = None, *,
                       now: datetime | None = None) -> dict[str, Any] | None:
    """An SFT row for an escalated trace the high-fidelity judge passed with high scores — only when the fast
    path did not already curate it (so ``example_id`` stays unique) and no fast judge found a policy or PII
    problem."""
    cfg = cfg or CurationConfig()
    t = jt.trace
    if not label.passed or not label.scores or not t.final_response.strip() or sft_row(jt, cfg) is not None:
        return None
    if min(label.scores.values()) < cfg.sft_min_score or label.confidence < cfg.sft_min_confidence:
        return None
    if any(v.status == "ok" and not v.passed and v.judge in ("policy", "pii_leak", "toxicity") for v in jt.verdicts):
        return None
    versions = judge_versions(jt.verdicts)
    versions[f"llm:{label.annotator or 'judge'}"] = label.judge_version
    return {"example_id": t.trace_id, "trace_id": t.trace_id, "conversation_id": t.conversation_id,
            "policy_id": t.policy_id, "prompt": strict_text(render_prompt(t)), "response": strict_text(t.final_response),
            "domain": str(t.metadata.get("domain") or t.agent_id), "score": min(label.scores.values()),
            "confidence": label.confidence, "judge_versions_json": _dump(versions),
            "date": t.timestamp.date().isoformat(), "src_topic": jt.source.topic,
            "src_partition": jt.source.partition, "src_offset": jt.source.offset,
            "created_at": now or datetime.now(timezone.utc)}
