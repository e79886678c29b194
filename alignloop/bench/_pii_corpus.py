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

from alignloop.bench._pii_eval import EVAL_TYPES
from schemas.trace import Trace

# kind groups for the report; the goal is 0% for STRUCTURED_IDS and ≤ 5% overall
NAMES_PLACES: Final = frozenset({"PERSON", "PERSON_LOWER", "LOCATION", "ADDRESS",  # corpus kinds
                                 "GPE", "STREET_ADDRESS", "ORGANIZATION"})  # presidio-evaluator's
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
        parts = [fold(s) for v in values for s in strings(v)]
        self.folded = "\n".join(parts)
        # Separators removed within each string, never across two: the digits of neighbouring numbers (bin indices
        # 0, 1, 2, … in a snapshot) must not join into a planted id.
        self.compact = "\x00".join(_NON_ALNUM.sub("", p) for p in parts)

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


def trace_texts(trace: Trace) -> list[str]:
    """Every string of a trace that the scrubber sees (ids and tool names included), for a text-only system."""
    d = trace.model_dump(mode="json", include={"agent_id", "policy_id", "user_message", "context", "tool_calls",
                                               "final_response", "candidates", "metadata", "flags"})
    return strings(d)


def redact(text: str, spans: list[tuple[int, int]], tag: str = "<PII>") -> str:
    """``text`` with ``spans`` (possibly overlapping) replaced by ``tag``."""
    out, pos = [], 0
    for s, e in sorted(spans):
        if e <= pos:
            continue
        out.append(text[pos:max(s, pos)])
        out.append(tag)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def run_corpus(cases: list[Case], scrubber: Any, analyzer: Any | None = None) -> dict[str, Any]:
    """Leak figures per kind for the stream's scrub step, the strict pass on what would be training data, and
    (with ``analyzer``, a Presidio AnalyzerEngine) Presidio on every string of the same traces; seconds each."""
    import time

    from streams.curation.rules import render_prompt
    from streams.scrub import scrub_trace
    from streams.scrub.strict import strict_text

    ours, strict, theirs = [], [], []
    t_ours = t_theirs = 0.0
    for case in cases:
        t0 = time.perf_counter()
        clean, _ = scrub_trace(case.trace, scrubber)
        t_ours += time.perf_counter() - t0
        out = Output(clean.model_dump(mode="json"))
        train = Output(strict_text(render_prompt(clean)), strict_text(clean.final_response),
                       [strict_text(c) for c in clean.candidates])
        ours += [(k, out.survives(k, v)) for k, v in case.planted]
        # training data is built from the prompt, context, response and candidates: values planted there
        seen = fold("\n".join([render_prompt(case.trace), case.trace.final_response, *case.trace.candidates]))
        strict += [(k, train.survives(k, v)) for k, v in case.planted if fold(v) in seen]
        if analyzer is not None:
            texts = trace_texts(case.trace)
            t0 = time.perf_counter()
            red = [redact(t, [(r.start, r.end) for r in analyzer.analyze(t, language="en")]) for t in texts]
            t_theirs += time.perf_counter() - t0
            pout = Output(red)
            theirs += [(k, pout.survives(k, v)) for k, v in case.planted]
    res: dict[str, Any] = {"traces": len(cases), "alignloop": tally(ours), "alignloop_training": tally(strict),
                           "alignloop_s": round(t_ours, 4)}
    if analyzer is not None:
        res.update({"presidio": tally(theirs), "presidio_s": round(t_theirs, 4),
                    "speedup": round(t_theirs / t_ours, 1) if t_ours else None})
    return res


def sentences_through_stream(data: list[tuple[str, list[tuple[str, int, int]]]], scrubber: Any,
                             analyzer: Any | None = None) -> dict[str, Any]:
    """presidio-evaluator sentences published as traces (user message) through the stream's scrub step: how many
    gold values survive verbatim, per evaluator type, for alignloop and (with ``analyzer``) Presidio."""
    from streams.scrub import scrub_trace

    ours, theirs = [], []
    for i, (text, gold) in enumerate(data):
        trace = Trace(trace_id=f"s{i}", conversation_id=f"s{i}", user_message=text, final_response="ok")
        clean, _ = scrub_trace(trace, scrubber)
        out = Output(clean.user_message)
        values = [(t, text[s:e]) for t, s, e in gold if t in EVAL_TYPES and text[s:e].strip()]
        ours += [(t, out.survives(t, v)) for t, v in values]
        if analyzer is not None:
            red = Output(redact(text, [(r.start, r.end) for r in analyzer.analyze(text, language="en")]))
            theirs += [(t, red.survives(t, v)) for t, v in values]
    res: dict[str, Any] = {"sentences": len(data), "alignloop": tally(ours)}
    if analyzer is not None:
        res["presidio"] = tally(theirs)
    return res
