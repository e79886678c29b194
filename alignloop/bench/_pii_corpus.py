"""The hand-written PII corpus (``tests/data/pii_corpus*.jsonl``): traces with planted values, and the leak check.

Each line is one trace in a compact form (``u`` user message, ``c`` context, ``t`` tool calls, ``r`` final
response, ``cand`` candidates, ``m`` metadata, ``a``/``p`` agent/policy id, ``flags``) plus ``pii``: the planted
``[kind, value]`` pairs. A value *survives* when it is still in the output: verbatim, after NFKC folding and
removal of invisible characters, case-insensitively with whitespace collapsed, read backwards (RTL-reversed
values), or — for structured and id-like kinds — with every separator removed from value and output alike.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.trace import Trace

# kind groups for the report; the goal is 0% for STRUCTURED_IDS and ≤ 5% overall
NAMES_PLACES: Final = frozenset({"PERSON", "PERSON_LOWER", "LOCATION", "ADDRESS"})
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[\W_]+")


@dataclass
class Case:
    id: str
    trace: Trace
    planted: list[tuple[str, str]]


def load_corpus(path: str | Path) -> list[Case]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        trace = Trace.model_validate({
            "trace_id": d["id"], "conversation_id": f"conv-{d['id']}", "agent_id": d.get("a", "agent-support"),
            "policy_id": d.get("p", "base"), "user_message": d.get("u", ""),
            "context": [{"role": "context", "content": c} for c in d.get("c", [])],
            "tool_calls": d.get("t", []), "final_response": d.get("r", ""), "candidates": d.get("cand", []),
            "metadata": d.get("m", {}), "flags": d.get("flags", [])})
        out.append(Case(d["id"], trace, [(k, v) for k, v in d["pii"]]))
    return out


def fold(s: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", _INVISIBLE.sub("", s))).casefold().strip()


def strings(v: Any) -> list[str]:
    """Every string in a JSON-like value, dict keys included."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for k, x in v.items() for s in strings(k) + strings(x)]
    if isinstance(v, (list, tuple)):
        return [s for x in v for s in strings(x)]
    return [str(v)] if v is not None else []


class Output:
    """What one trace became (scrubbed trace, judged event, curated rows), folded once for the leak checks."""

    def __init__(self, *values: Any) -> None:
        raw = "\n".join(s for v in values for s in strings(v))
        self.folded = fold(raw)
        self.compact = _NON_ALNUM.sub("", self.folded)

    def survives(self, kind: str, value: str) -> bool:
        v = fold(value)
        if v in self.folded or v[::-1] in self.folded:
            return True
        if kind in NAMES_PLACES:
            return False
        c = _NON_ALNUM.sub("", v)
        return len(c) >= 6 and (c in self.compact or c[::-1] in self.compact)


def tally(results: list[tuple[str, bool]]) -> dict[str, dict[str, float | int]]:
    """Per kind: planted, survived, rate; plus ``ALL``, ``STRUCTURED_IDS`` and ``NAMES_PLACES`` rows."""
    t: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, leaked in results:
        group = "NAMES_PLACES" if kind in NAMES_PLACES else "STRUCTURED_IDS"
        for k in (kind, group, "ALL"):
            t[k][0] += 1
            t[k][1] += leaked
    return {k: {"planted": n, "survived": s, "rate": round(s / n, 4) if n else 0.0} for k, (n, s) in sorted(t.items())}
