"""Seed 003 §6.4's filters over synthetic rows (no torch here; the style scorer is passed in).

Hard: malformed rows, empty fields, length, leftover markup/control text, redline keywords in a non-refusing
answer. Smart: toxicity (the toxicity judge's offline lexicon, ``streams.judges.ToxicityJudge`` — the same proxy
the eval gate scores with), SimHash near-duplicates over instruction + output (``trainers.dedup``: 64-bit SimHash
of word bigrams, banded so Hamming <= k is found exactly; datasketch offers MinHash/LSH, which estimates Jaccard,
not SimHash's Hamming contract), style adherence (cosine to the persona centroid, ``trainers.persona.style``),
and refusal banding (the caller re-samples towards the band, see ``synthesize``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from schemas.persona import Persona
from schemas.synth_config import FilterConfig
from schemas.trace import Trace
from streams.judges import JudgeContext, ToxicityJudge
from streams.judges._text import TextView, is_refusal
from trainers.dedup import dedup_indices

FILTERS = ("malformed", "empty", "length", "markup", "redline", "toxicity", "duplicate", "style")
# Generation leftovers: chat-template tokens, role prefixes, code fences, XML-ish tags.
_MARKUP = re.compile(r"<\|[a-z_]+\|>|^\s*(?:SYSTEM|USER|ASSISTANT)\s*:|```|</?[a-zA-Z][a-zA-Z0-9_-]*>", re.MULTILINE)
# Keywords per common redline category (matched in answers that do not refuse); the persona's own redline
# phrases are matched too.
REDLINE_KEYWORDS: dict[str, list[str]] = {
    "illicit": ["untraceable firearm", "synthesise a controlled", "synthesize meth", "cook meth", "pipe bomb"],
    "biological": ["culture a dangerous pathogen", "weaponize", "weaponise", "spread a pathogen", "anthrax spores"],
    "violent": ["hurt my coworker", "without getting caught", "kill them"],
    "pii": ["home address and phone number", "social security number", "scrape about a stranger", "dox"],
}
Scorer = Callable[[Sequence[str]], np.ndarray]


@dataclass
class FilterOutcome:
    accepted: list[dict[str, Any]]
    rejected: list[tuple[dict[str, Any], str]]
    counts: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FILTERS})


_TOX = ToxicityJudge()


def toxicity_score(text: str) -> float:
    """The toxicity judge's lexicon score in [0, 1]."""
    trace = Trace(trace_id="synth", conversation_id="synth", user_message="", final_response=text, policy_id="synth")
    return float(_TOX.score(trace, JudgeContext())[0])


def refusal_detect(text: str, persona: Persona | None = None) -> bool:
    """The judges' refusal regex, or the opening of the persona's refusal template."""
    if persona is not None:
        head = persona.refusal_policy.template.split(".")[0].strip().lower()
        if head and text.strip().lower().replace("\u2019", "'").startswith(head.replace("\u2019", "'")):
            return True
    trace = Trace(trace_id="synth", conversation_id="synth", user_message="", final_response=text, policy_id="synth")
    return is_refusal(TextView(trace))


def redline_terms(persona: Persona) -> re.Pattern[str]:
    terms = [t.lower() for t in persona.redline_terms()] + [k for ks in REDLINE_KEYWORDS.values() for k in ks]
    return re.compile("|".join(rf"\b{re.escape(t)}\b" for t in terms))


def hard_reason(row: Any, persona: Persona, cfg: FilterConfig, terms: re.Pattern[str]) -> str | None:
    """Why a row fails the hard filters, or None. Over-long outputs are truncated (seed 003: cap ~350 tokens)."""
    if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("instruction", "output")) \
            or not isinstance(row.get("metadata"), dict):
        return "malformed"
    if not row["instruction"].strip() or len(row["output"].split()) < cfg.min_words:
        return "empty"
    if len(row["instruction"]) > cfg.max_instruction_chars:
        return "length"
    words = row["output"].split()
    if len(words) > cfg.max_words:
        row["output"] = " ".join(words[:cfg.max_words])
        row["metadata"]["truncated"] = True
    if _MARKUP.search(row["output"]) or _MARKUP.search(row["instruction"]):
        return "markup"
    refused = refusal_detect(row["output"], persona)
    row["metadata"]["refusal"] = refused
    if not refused and terms.search(row["output"].lower()):
        return "redline"
    return None


def apply_filters(rows: list[dict[str, Any]], persona: Persona, cfg: FilterConfig,
                  style: Scorer | None = None, *, seen: Sequence[str] = ()) -> FilterOutcome:
    """Hard filters, toxicity, SimHash dedup (also against ``seen`` texts already accepted), style; in that order."""
    out = FilterOutcome([], [])
    terms = redline_terms(persona)
    survivors = []
    for row in rows:
        reason = hard_reason(row, persona, cfg, terms)
        if reason is None:
            tox = toxicity_score(row["output"])
            row["metadata"]["quality_scores"].update(len=len(row["output"].split()), toxicity=round(tox, 4))
            reason = "toxicity" if tox > cfg.toxicity_max else None
        if reason:
            out.rejected.append((row, reason))
            out.counts[reason] += 1
        else:
            survivors.append(row)
    texts = [*seen, *(f"{r['instruction']}\n{r['output']}" for r in survivors)]
    keep, _, _ = dedup_indices(texts, cfg.near_dup_bits)
    kept = {i - len(seen) for i in keep if i >= len(seen)}
    deduped = []
    for i, row in enumerate(survivors):
        if i in kept:
            deduped.append(row)
        else:
            out.rejected.append((row, "duplicate"))
            out.counts["duplicate"] += 1
    scores = style([r["output"] for r in deduped]) if style is not None and deduped else None
    for i, row in enumerate(deduped):
        if scores is not None:
            row["metadata"]["quality_scores"]["style"] = round(float(scores[i]), 4)
            # a refusal enacts the refusal template, not the answer style: it is not held to the style bar
            if scores[i] < cfg.style_min and not row["metadata"].get("refusal"):
                out.rejected.append((row, "style"))
                out.counts["style"] += 1
                continue
        out.accepted.append(row)
    return out


def refusal_fraction(rows: Sequence[dict[str, Any]]) -> float:
    return float(np.mean([bool(r["metadata"].get("refusal")) for r in rows])) if rows else 0.0


def banding_need(n_ok: int, n_refused: int, band: tuple[float, float]) -> tuple[str, int]:
    """('add', k) refusals to add, ('drop', k) refusals to drop, or ('ok', 0), aiming at the band's middle."""
    total = n_ok + n_refused
    lo, hi = band
    frac = n_refused / total if total else 0.0
    target = (lo + hi) / 2
    if total and frac < lo:
        return "add", max(1, int(np.ceil((target * total - n_refused) / (1 - target))))
    if total and frac > hi:
        return "drop", n_refused - int(np.floor(target * n_ok / (1 - target))) if target < 1 else 0
    return "ok", 0
