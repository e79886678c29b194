"""Prompt generation (seed 001): templated offline, evolutionary (mutate + recombine seed prompts) and free-form
(from an instruction), by category and difficulty, under domain constraints, deduplicated (SimHash), as JSONL.

Templated prompts reuse the persona generator's topic pools and per-difficulty templates. Evolution follows the
Evol-Instruct operators (add a constraint, deepen, concretise, increase reasoning, recombine two prompts): through
an OpenAI-compatible endpoint when a client is given (``connectors.llm_chat.ChatClient``: retries, concurrency,
spend cap; the client is closed after the call), else by offline rewrite rules. Free-form needs an endpoint. Every prompt is checked against the
constraints (max length, forbidden terms, required terms per category); failures are counted, never raised.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainers.dedup import dedup_indices
from trainers.persona.templates import AUDIENCES, TEMPLATES, TOPICS

CATEGORIES = tuple(TOPICS)
DIFFICULTIES = tuple(TEMPLATES)
OPERATORS = {
    "constrain": "Add one concrete constraint or requirement to this prompt.",
    "deepen": "Make this prompt ask for deeper understanding of the same subject.",
    "concretise": "Replace general concepts in this prompt with a specific, concrete case.",
    "reason": "Rewrite this prompt so that answering it needs several explicit reasoning steps.",
}
_OFFLINE = {
    "constrain": [" Answer in at most three sentences.", " Include one number.", " Avoid jargon.",
                  " Give one counterexample."],
    "deepen": [" Explain the mechanism behind it, not just the outcome.", " Say what is still debated."],
    "concretise": [" Use a specific city or company as the example.", " Work through one real case."],
    "reason": [" Show each step of the reasoning.", " Estimate the answer first, then check it."],
}


@dataclass
class Constraints:
    max_chars: int = 400
    forbid: list[str] = field(default_factory=list)
    require_any: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> "Constraints":
        if path is None:
            return cls()
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"constraints file {p} not found")
        raw = yaml.safe_load(p.read_text()) or {}
        unknown = set(raw) - {"max_chars", "forbid", "require_any"}
        if unknown:
            raise ValueError(f"{p}: unknown constraint keys {sorted(unknown)}; known: max_chars, forbid, require_any")
        return cls(**raw)

    def violation(self, text: str, category: str) -> str | None:
        low = text.lower()
        if not text.strip():
            return "empty"
        if len(text) > self.max_chars:
            return "too_long"
        if any(f.lower() in low for f in self.forbid):
            return "forbidden_term"
        need = self.require_any.get(category)
        if need and not any(w.lower() in low for w in need):
            return "missing_required_term"
        return None


def _run(client: Any, coro: Any) -> Any:
    """Run on a loop of its own, then close the client (its connections belong to this loop)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def templated(categories: list[str], difficulties: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"prompts:{seed}")
    out = []
    for i in range(n):
        cat, diff = categories[i % len(categories)], difficulties[(i // len(categories)) % len(difficulties)]
        pool = TOPICS.get(cat) or [t for ts in TOPICS.values() for t in ts]
        t, u = rng.sample(pool, 2)
        text = rng.choice(TEMPLATES[diff]).format(t=t, u=u)
        out.append({"prompt": text[:-1] + rng.choice(AUDIENCES) + text[-1], "category": cat, "difficulty": diff,
                    "source": "template"})
    return out


def _evolve_offline(row: dict[str, Any], op: str, rng: random.Random) -> str:
    return row["prompt"] + rng.choice(_OFFLINE[op])


async def _evolve_llm(client: Any, row: dict[str, Any], op: str, other: dict[str, Any] | None) -> str:
    if other is not None:
        ask = (f"Combine these two prompts into one new prompt that needs both:\n1. {row['prompt']}\n"
               f"2. {other['prompt']}\nReply with the new prompt only.")
    else:
        ask = f"{OPERATORS[op]}\nPrompt: {row['prompt']}\nReply with the rewritten prompt only."
    return await client.complete_text([{"role": "system", "content": "You rewrite prompts for a training set."},
                                       {"role": "user", "content": ask}], temperature=0.9)


def evolve(seeds: list[dict[str, Any]], n: int, seed: int, client: Any = None,
           counts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """``n`` children: a random operator applied to a random seed prompt, or (1 in 5) two prompts recombined."""
    from connectors.llm_chat import EndpointError

    rng = random.Random(f"evolve:{seed}")
    counts = counts if counts is not None else {}
    plans = []
    for _ in range(n):
        a = rng.choice(seeds)
        if len(seeds) > 1 and rng.random() < 0.2:
            plans.append((a, "recombine", rng.choice([s for s in seeds if s is not a])))
        else:
            plans.append((a, rng.choice(list(OPERATORS)), None))

    async def run_all() -> list[str | None]:
        async def one(a: dict[str, Any], op: str, b: dict[str, Any] | None) -> str | None:
            try:
                return (await _evolve_llm(client, a, op, b)).strip().strip('"')
            except EndpointError:
                counts["endpoint_failures"] = counts.get("endpoint_failures", 0) + 1
                return None
        return await asyncio.gather(*(one(*p) for p in plans))

    if client is not None:
        texts = _run(client, run_all())
    else:
        texts = [(a["prompt"] + " Also: " + b["prompt"][0].lower() + b["prompt"][1:]) if op == "recombine"
                 else _evolve_offline(a, op, rng) for a, op, b in plans]
    return [{"prompt": t, "category": a["category"], "difficulty": "hard" if op in ("reason", "recombine")
             else a["difficulty"], "source": f"evolve:{op}", "parent": a["prompt"]}
            for (a, op, _), t in zip(plans, texts) if t]


def free_form(instruction: str, n: int, client: Any, category: str = "general",
              counts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """``n`` prompts an endpoint writes from ``instruction`` (JSONL lines, re-asked when too few)."""
    from connectors.llm_chat import EndpointError
    from trainers.persona.synth import parse_instruction_lines

    counts = counts if counts is not None else {}
    messages = [{"role": "system", "content": "You write diverse user prompts for a training set. Output JSONL "
                 "lines with the key instruction, one prompt per line."},
                {"role": "user", "content": f"Write {n} prompts. {instruction}"}]
    try:
        lines = _run(client, client.complete(messages, lambda c: parse_instruction_lines(c, n), json_mode=False))
    except EndpointError:
        counts["endpoint_failures"] = counts.get("endpoint_failures", 0) + 1
        return []
    return [{"prompt": x["instruction"], "category": category, "difficulty": "medium", "source": "free-form"}
            for x in lines]


def finish(rows: list[dict[str, Any]], constraints: Constraints, seed: int,
           near_dup_bits: int = 3) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Constraints, then SimHash dedup; ids assigned in order. Returns (rows, rejection counts)."""
    counts: dict[str, int] = {}
    ok = []
    for r in rows:
        why = constraints.violation(r["prompt"], r["category"])
        if why:
            counts[why] = counts.get(why, 0) + 1
        else:
            ok.append(r)
    keep, exact, near = dedup_indices([r["prompt"] for r in ok], near_dup_bits)
    counts["duplicate"] = exact + near
    out = [{"id": f"prompt-{seed}-{k:06d}", **ok[i]} for k, i in enumerate(keep)]
    return out, counts
