"""The labeling logic, pure: a human-queue record → a servable item; a form → a checked answer; an answer → the
item's new state and the records to publish (a human Label or Preference, a consensus when the adaptive stop
closes the item, an SFT example from a correction, the audit entry).

Ids are deterministic (``human:<item>:<annotator>``, ``consensus:<item>``), so a re-sent outbox record or a
replayed queue lands once. Scores go out normalised to [0, 1] like the judges' (a 1–7 point p is (p-1)/6, a
binary is 0 or 1).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from schemas.escalation import HumanQueueItem
from schemas.labeling import STRENGTHS, LabelingConfig, QueueConfig
from schemas.preference import Label, Preference
from streams.agreement import AnnotatorModel, StopRule, median_low

MAX_TEXT = 20_000  # longest correction accepted


class AnswerError(ValueError):
    """A form that cannot be an answer; the message says what to fix."""


def item_id(queue: str, trace_id: str) -> str:
    return f"{queue}:{trace_id}"


def audit_subject(item: str) -> str:
    """Items are named by a hash in the audit trail: no trace id (and so nothing erasable) is written there."""
    return "item:" + hashlib.sha256(item.encode()).hexdigest()[:16]


def item_from_queue(hq: HumanQueueItem, cfg: LabelingConfig) -> dict[str, Any] | None:
    """The DB row for a human-queue record, or None when it carries no trace to show (a raw, unparsable one)."""
    if hq.escalation is None:
        return None
    jt = hq.escalation.judged
    t = jt.trace
    pair = list(t.candidates[:2]) if len(t.candidates) >= 2 else (
        [t.final_response, t.candidates[0]] if t.candidates else [])
    q = cfg.route(hq.reason, bool(pair))
    payload = {
        "user_message": t.user_message, "final_response": t.final_response, "policy_id": t.policy_id,
        "context": [{"role": c.role, "content": c.content} for c in t.context],
        "tool_calls": [{"name": c.name, "args": c.args, "result": c.result, "error": c.error, "status": c.status}
                       for c in t.tool_calls],
        "candidates": pair if q.kind == "pairwise" else [],
        "verdicts": [{"judge": v.judge, "passed": v.passed, "scores": v.scores, "confidence": v.confidence,
                      "reasons": v.reasons[:5]} for v in jt.verdicts if v.status == "ok"],
        "reason": hq.reason, "llm_rationale": hq.llm_rationale, "outcome": jt.outcome,
        "conversation_id": t.conversation_id,
    }
    return {"id": item_id(q.name, t.trace_id), "queue": q.name, "trace_id": t.trace_id, "kind": q.kind,
            "payload": payload, "max_labels": q.max_labels, "priority": float(hq.escalation.priority),
            "queued_at": hq.queued_at}


def _text(form: Mapping[str, str], key: str, limit: int, what: str) -> str:
    v = (form.get(key) or "").strip()
    if len(v) > limit:
        raise AnswerError(f"the {what} is {len(v)} characters; the limit is {limit} — shorten it")
    return v


def parse_answer(q: QueueConfig, form: Mapping[str, str], swapped: bool) -> dict[str, Any]:
    """A checked answer from the submitted form (values as strings), or AnswerError naming the field."""
    ans: dict[str, Any] = {}
    if q.kind == "score_card":
        scores: dict[str, int] = {}
        for d in q.dimensions:
            raw = (form.get(f"score_{d.name}") or "").strip()
            top = 7 if d.scale == "likert7" else 2
            if not raw.isdigit() or not 1 <= int(raw) <= top:
                raise AnswerError(f"{d.name}: pick 1–{top}")
            scores[d.name] = int(raw)
        ans["scores"] = scores
    else:
        side = (form.get("choice") or "").strip()
        if side not in ("left", "right"):
            raise AnswerError("pick the better response: left (1) or right (2)")
        strength = (form.get("strength") or "").strip()
        if not strength.isdigit() or not 1 <= int(strength) <= len(STRENGTHS):
            raise AnswerError(f"strength: pick 1–{len(STRENGTHS)} ({', '.join(STRENGTHS)})")
        ans.update(choice=side, strength=int(strength), chosen=(0 if side == "left" else 1) ^ int(swapped))
    if q.rationale != "off":
        ans["rationale"] = _text(form, "rationale", q.max_rationale_chars, "rationale")
        if q.rationale == "required" and not ans["rationale"]:
            raise AnswerError("a rationale is required for this queue")
    if q.correction:
        ans["correction"] = _text(form, "correction", MAX_TEXT, "corrected response")
    return ans


def normalised(q: QueueConfig, scores: Mapping[str, int]) -> dict[str, float]:
    scale = {d.name: d.scale for d in q.dimensions}
    return {k: round((v - 1) / 6, 4) if scale.get(k) == "likert7" else float(v - 1) for k, v in scores.items()}


def passed(q: QueueConfig, scores: Mapping[str, int]) -> bool:
    norm = normalised(q, scores)
    binaries = [norm[d.name] for d in q.dimensions if d.scale == "binary" and d.name in norm]
    return all(b >= 1 for b in binaries) and sum(norm.values()) / max(1, len(norm)) >= q.pass_threshold


def decision(q: QueueConfig, ans: Mapping[str, Any]) -> Any:
    """The categorical answer the adaptive stop and self-consistency use: pass/fail, or the chosen index."""
    return ("pass" if passed(q, ans["scores"]) else "fail") if q.kind == "score_card" else int(ans["chosen"])


def classes(q: QueueConfig) -> list[Any]:
    return ["pass", "fail"] if q.kind == "score_card" else [0, 1]


def _label(q: QueueConfig, item: Any, *, label_id: str, annotator: str, scores: Mapping[str, int], ok: bool,
           confidence: float, rationale: str, now: datetime) -> Label:
    return Label(label_id=label_id, trace_id=item.trace_id, policy_id=item.payload.get("policy_id") or "base",
                 source="human", annotator=annotator, scores=normalised(q, scores), passed=ok,
                 confidence=round(confidence, 4), rationale=rationale, judge_version="human-1", created_at=now)


def _preference(item: Any, *, pref_id: str, chosen: int, strength: int, rationale: str, md: dict[str, Any],
                now: datetime, candidates: list[str] | None = None) -> Preference:
    cands = candidates or list(item.payload["candidates"])
    return Preference(pref_id=pref_id, prompt=item.payload["user_message"], candidates=cands, chosen_idx=chosen,
                      rejected_idx=1 - chosen, strength=strength / len(STRENGTHS), rationale=rationale,
                      metadata={"source": "human", "trace_id": item.trace_id, "policy_id": item.payload.get("policy_id"),
                                **md}, created_at=now)


@dataclass
class Finisher:
    """``LabelStore.submit``'s ``finish``: publishes the human answer, and closes the item when the Dawid–Skene
    posterior over its answers is clear (``StopRule``), publishing the consensus with its method."""

    cfg: LabelingConfig
    models: dict[str, AnnotatorModel] = field(default_factory=dict)  # per queue, refitted by the app
    now: Any = None

    def rule(self, q: QueueConfig) -> StopRule:
        return StopRule(min_labels=q.min_labels, max_labels=q.max_labels, confidence=q.stop_confidence)

    def model(self, q: QueueConfig) -> AnnotatorModel:
        return self.models.get(q.name) or AnnotatorModel(classes=classes(q))

    def __call__(self, _s: Any, item: Any, a: Any, answers: list[tuple[str, dict[str, Any]]], who: str) -> Any:
        from connectors.labeling_db import Finish

        q = self.cfg.queue(item.queue)
        now = self.now() if self.now else datetime.now(timezone.utc)
        mine = a.answer
        records: list[tuple[str, str, dict[str, Any]]] = []
        if a.kind == "label":
            records += self.human_records(q, item, who, mine, now)
        status = consensus = None
        if a.kind == "label" and item.status == "open":
            votes = [(w, decision(q, ans)) for w, ans in answers]
            verdict, lead, p = self.rule(q).decide(self.model(q), votes)
            if verdict != "continue":
                status = verdict
                consensus = self.consensus(q, answers, lead, p, method="dawid_skene")
                if verdict == "resolved":
                    records += self.consensus_records(q, item, consensus, now)
        return Finish(status=status, consensus=consensus, records=tuple(records))

    def human_records(self, q: QueueConfig, item: Any, who: str, ans: dict[str, Any], now: datetime
                      ) -> list[tuple[str, str, dict[str, Any]]]:
        out: list[tuple[str, str, dict[str, Any]]] = []
        rid = f"human:{item.id}:{who}"
        rationale = ans.get("rationale", "")
        if q.kind == "score_card":
            lab = _label(q, item, label_id=rid, annotator=who, scores=ans["scores"], ok=passed(q, ans["scores"]),
                         confidence=1.0, rationale=rationale, now=now)
            out.append(("label", lab.label_id, lab.model_dump(mode="json")))
        else:
            p = _preference(item, pref_id=rid, chosen=ans["chosen"], strength=ans["strength"], rationale=rationale,
                            md={"annotator": who, "shown_left": ans["choice"] == "left"}, now=now)
            out.append(("preference", p.pref_id, p.model_dump(mode="json")))
        fix = ans.get("correction") or ""
        original = item.payload.get("final_response") or ""
        if fix and fix != original:
            out.append(("sft", f"correction:{item.id}:{who}", {
                "example_id": f"correction:{item.id}:{who}", "trace_id": item.trace_id,
                "conversation_id": item.payload.get("conversation_id"), "policy_id": item.payload.get("policy_id"),
                "prompt": item.payload["user_message"], "response": fix, "domain": "human_correction",
                "score": 1.0, "confidence": 1.0, "judge_versions_json": '{"human": "1"}',
                "date": now.date().isoformat(), "created_at": now.isoformat()}))
            p = _preference(item, pref_id=f"correction:{item.id}:{who}", chosen=0, strength=len(STRENGTHS),
                            rationale=rationale, md={"annotator": who, "kind": "correction"}, now=now,
                            candidates=[fix, original])
            out.append(("preference", p.pref_id, p.model_dump(mode="json")))
        return out

    def consensus(self, q: QueueConfig, answers: list[tuple[str, dict[str, Any]]], lead: Any, p: float, *,
                  method: str, by: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {"method": method, "decision": lead, "posterior": round(p, 4), "n": len(answers),
                             "annotators": [w for w, _ in answers]}
        if by:
            c["by"] = by
        if q.kind == "score_card":
            agreeing = [ans for _, ans in answers if decision(q, ans) == lead] or [ans for _, ans in answers]
            c["scores"] = {d.name: int(median_low([a["scores"][d.name] for a in agreeing])) for d in q.dimensions}
        else:
            strengths = [a["strength"] for _, a in answers if a["chosen"] == lead] or [len(STRENGTHS)]
            c["strength"] = int(median_low(strengths))
        return c

    def consensus_records(self, q: QueueConfig, item: Any, c: dict[str, Any], now: datetime
                          ) -> list[tuple[str, str, dict[str, Any]]]:
        """The consensus as a Label (annotator ``consensus:<method>``) or a Preference (metadata.consensus)."""
        rid = f"consensus:{item.id}"
        if q.kind == "score_card":
            scores = c["scores"]
            lab = _label(q, item, label_id=rid, annotator=f"consensus:{c['method']}", scores=scores,
                         ok=c["decision"] == "pass", confidence=c["posterior"],
                         rationale=f"consensus of {c['n']} annotators ({c['method']})", now=now)
            return [("label", rid, lab.model_dump(mode="json"))]
        p = _preference(item, pref_id=rid, chosen=int(c["decision"]), strength=c["strength"],
                        rationale=f"consensus of {c['n']} annotators ({c['method']})",
                        md={"annotator": f"consensus:{c['method']}", "consensus": True, "method": c["method"],
                            "posterior": c["posterior"]}, now=now)
        return [("preference", rid, p.model_dump(mode="json"))]


def adjudicated(q: QueueConfig, form: Mapping[str, str], reviewer: str, answers: list[tuple[str, dict[str, Any]]]
                ) -> dict[str, Any]:
    """A reviewer's ruling as a consensus (method 'adjudicated'); the form is the labeling form."""
    ans = parse_answer(q, form, swapped=False)
    c: dict[str, Any] = {"method": "adjudicated", "by": reviewer, "decision": decision(q, ans), "posterior": 1.0,
                         "n": len(answers), "annotators": [w for w, _ in answers]}
    if q.kind == "score_card":
        c["scores"] = ans["scores"]
    else:
        c["strength"] = ans["strength"]
    if ans.get("rationale"):
        c["rationale"] = ans["rationale"]
    return c


def audit_record(actor: str, action: str, item: str | None, **details: Any) -> tuple[str, str, dict[str, Any]]:
    subject = audit_subject(item) if item else details.pop("subject", "ui")
    return ("audit", action, {"actor": actor, "action": action, "subject": subject, "details": details})
