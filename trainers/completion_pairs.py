"""Generated completions -> preference pairs by judged winner (seed 001): each prompt's K completions are judged
by the fast judges (the same judging that makes preferences from traces' candidates, ``streams.curation.rules.
judged_candidate_preference``); a clear winner over the worst becomes a `Preference` (``source: completions``), with
a deterministic id so publishing twice lands once."""
from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable

from schemas.preference import Preference
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef
from streams.curation.rules import CurationConfig, judged_candidate_preference


def preference_pairs(rows: Iterable[dict[str, Any]], judges: list[Any], cfg: CurationConfig | None = None
                     ) -> tuple[list[Preference], Counter[str]]:
    """(preferences, outcome counts) for rows ``{prompt_id, prompt, completions: [{text, backend, model, ...}]}``."""
    prefs: list[Preference] = []
    outcomes: Counter[str] = Counter()
    now = datetime.now(timezone.utc)
    for i, row in enumerate(rows):
        comps = [c for c in row.get("completions") or [] if isinstance(c.get("text"), str) and c["text"].strip()]
        texts = list(dict.fromkeys(c["text"] for c in comps))  # distinct, first occurrence wins
        if len(texts) < 2:
            outcomes["fewer_than_two_distinct"] += 1
            continue
        pid = str(row.get("prompt_id") or f"p{i}")
        key = hashlib.sha256(f"{pid}\x1f{row['prompt']}".encode()).hexdigest()[:16]
        trace = Trace(trace_id=f"gen-{key}", conversation_id=f"gen-{key}", agent_id="completions",
                      user_message=row["prompt"], final_response=texts[0], candidates=texts, timestamp=now)
        jt = JudgedTrace(trace=trace, source=SourceRef(topic="completions", partition=0, offset=i), processed_at=now)
        pref = judged_candidate_preference(jt, judges, cfg)
        if pref is None:
            outcomes["no_clear_winner"] += 1
            continue
        by_text = {c["text"]: c for c in comps}
        models = {side: {k: by_text[texts[idx]].get(k) for k in ("backend", "model", "temperature", "top_p")}
                  for side, idx in (("chosen", pref.chosen_idx), ("rejected", pref.rejected_idx))}
        prefs.append(pref.model_copy(update={
            "pref_id": f"completions:{key}:{pref.chosen_idx}:{pref.rejected_idx}",
            "metadata": {**pref.metadata, "source": "completions", "prompt_id": pid, "models": models}}))
        outcomes["pair"] += 1
    return prefs, outcomes
