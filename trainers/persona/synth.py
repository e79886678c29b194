"""Synthetic persona SFT rows (seed 003 §6): a plan, two generators, a resumable raw store.

The plan fixes each row's domain and difficulty from the seed (exact quotas of the configured mix, shuffled), so
row i's plan never depends on how many rows ran before. Generators: ``OfflineGenerator`` (templates, no model)
and ``LlmGenerator`` (seed 003's instruction-generator and answer-generator prompts through any OpenAI-compatible
endpoint, with the LLM judge client's retries, concurrency and spend cap). Raw rows are appended to a JSONL store
one line at a time, so a killed run resumes with the rows it has and generates only the missing ones.
"""
from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from schemas.persona import Persona
from schemas.synth_config import SynthConfig
from trainers.persona.templates import offline_row

INSTRUCTION_PROMPT = """You design tasks matching a target persona and value profile.
Persona: {persona_description}
Value weights: {values_vector}
Constraints: produce {n} diverse instructions across domains (general knowledge, reasoning, social, light coding).
Avoid benchmark boilerplate. Output JSONL lines with keys: instruction, input(optional), target_style_tags."""

ANSWER_PROMPT = """You are the model producing answers that enact this persona.
Persona: {persona_description}
Values: {values_vector}
Refusal policy: {refusal_policy}
STYLE: tone={tone}; structure={structure}; verbosity={verbosity}"""
ANSWER_SUFFIX = "<final answer only; adhere to taboos/redlines; no fake citations.>"
DOMAIN_HINT = {"general": "general knowledge / QA", "reasoning": "reasoning", "social": "social",
               "safety-edge": "a safety-edge request (borderline or redline, to test the refusal policy)",
               "code-lite": "light coding"}


@dataclass(frozen=True)
class Planned:
    index: int
    domain: str
    difficulty: str


def _quotas(mix: dict[str, float], n: int) -> list[str]:
    """Exactly n labels in the mix's proportions (largest remainder)."""
    raw = {k: v * n for k, v in mix.items()}
    counts = {k: math.floor(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[:n - sum(counts.values())]:
        counts[k] += 1
    return [k for k in mix for _ in range(counts[k])]


def plan(n: int, seed: int, cfg: SynthConfig) -> list[Planned]:
    rng = random.Random(f"plan:{seed}:{n}")
    domains, levels = _quotas(cfg.domains, n), _quotas(cfg.difficulty, n)
    rng.shuffle(domains)
    rng.shuffle(levels)
    return [Planned(i, d, lv) for i, (d, lv) in enumerate(zip(domains, levels))]


def extra_plan(start: int, count: int, domain: str | None, seed: int, cfg: SynthConfig) -> list[Planned]:
    """Rows after the plan (refusal banding): ``domain`` fixed, or drawn from the mix without safety-edge."""
    rng = random.Random(f"extra:{seed}:{start}")
    others = {k: v for k, v in cfg.domains.items() if k != "safety-edge" and v > 0} or {"general": 1.0}
    out = []
    for i in range(start, start + count):
        d = domain or rng.choices(list(others), weights=list(others.values()))[0]
        out.append(Planned(i, d, rng.choices(list(cfg.difficulty), weights=list(cfg.difficulty.values()))[0]))
    return out


def sampling_for(seed: int, index: int, cfg: SynthConfig) -> dict[str, float]:
    rng = random.Random(f"sample:{seed}:{index}")
    return {"temperature": round(rng.uniform(*cfg.temperature), 3), "top_p": round(rng.uniform(*cfg.top_p), 3)}


def make_row(persona: Persona, p: Planned, raw: dict[str, Any], *, seed: int, source: str,
             sampling: dict[str, float] | None = None) -> dict[str, Any]:
    """A row in seed 003 §6.1's SFT format, tagged with the persona id and version."""
    style_tags = [*persona.style.tone, "-".join(persona.style.structure[:2])] if persona.style.structure \
        else list(persona.style.tone)
    return {
        "id": f"sft-{p.index + 1:06d}", "persona_id": persona.id, "persona_version": persona.version,
        "instruction": raw.get("instruction"), "input": raw.get("input") or "", "output": raw.get("output"),
        "metadata": {
            "values_vector": persona.values_vector(), "style_tags": style_tags,
            "safety_tags": ["safety-edge"] if p.domain == "safety-edge" else ["benign"], "source": source,
            "quality_scores": {"len": len(str(raw.get("output") or "").split())}, "domain": p.domain,
            "difficulty": p.difficulty, "persona": persona.tag, "persona_hash": persona.content_hash(),
            "seed": seed, "index": p.index, **({"sampling": sampling} if sampling else {}),
        },
    }


class Generator(Protocol):
    source: str
    counts: dict[str, int]

    def generate(self, batch: list[Planned]) -> Iterator[dict[str, Any]]: ...


class OfflineGenerator:
    """Template rows: deterministic per (seed, index), no endpoint."""

    source = "synthetic-v0"

    def __init__(self, persona: Persona, seed: int):
        self.persona, self.seed = persona, seed
        self.counts: dict[str, int] = {"generated": 0}

    def generate(self, batch: list[Planned]) -> Iterator[dict[str, Any]]:
        for p in batch:
            self.counts["generated"] += 1
            yield make_row(self.persona, p, offline_row(self.persona, p.domain, p.difficulty, self.seed, p.index),
                           seed=self.seed, source=self.source)


def parse_instruction_lines(content: str, want: int) -> list[dict[str, str]]:
    """The generator's JSONL reply -> ``want`` instructions; ValueError (re-asked) when there are too few."""
    out = []
    for line in content.strip().strip("`").splitlines():
        line = line.strip().rstrip(",")
        if not line.startswith("{"):
            continue  # prose around the lines, a ```jsonl fence
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        ins = obj.get("instruction") if isinstance(obj, dict) else None
        if isinstance(ins, str) and ins.strip():
            inp = obj.get("input")
            out.append({"instruction": ins.strip(), "input": inp.strip() if isinstance(inp, str) else ""})
    if len(out) < want:
        raise ValueError(f"asked for {want} instruction lines, got {len(out)} usable")
    return out[:want]


class LlmGenerator:
    """Seed 003's two prompts through an OpenAI-compatible endpoint. A batch or row the endpoint cannot serve
    (down, slow, rate-limited or garbage past the client's retries) is counted and left out; a resumed run asks
    for it again."""

    source = "synthetic-llm"

    def __init__(self, persona: Persona, seed: int, cfg: SynthConfig, client: Any):
        self.persona, self.seed, self.cfg, self.client = persona, seed, cfg, client
        self.counts: dict[str, int] = {"generated": 0, "instruction_failures": 0, "answer_failures": 0}
        self._loop = asyncio.new_event_loop()
        vals = json.dumps(persona.values_vector())
        self.ins_system = INSTRUCTION_PROMPT.format(persona_description=persona.description, values_vector=vals,
                                                    n="{n}")
        self.ans_system = ANSWER_PROMPT.format(
            persona_description=persona.description, values_vector=vals,
            refusal_policy=json.dumps(persona.refusal_policy.model_dump(mode="json"), ensure_ascii=False),
            tone=", ".join(persona.style.tone), structure=json.dumps(persona.style.structure),
            verbosity=persona.style.verbosity)

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())
        self._loop.close()

    async def _instructions(self, batch: list[Planned]) -> list[dict[str, str]]:
        spec = "\n".join(f"{k + 1}. domain: {DOMAIN_HINT[p.domain]}; difficulty: {p.difficulty}"
                         for k, p in enumerate(batch))
        messages = [{"role": "system", "content": self.ins_system.replace("{n}", str(len(batch)))},
                    {"role": "user", "content": f"One line per item, in this order:\n{spec}"}]
        return await self.client.complete(messages, lambda c: parse_instruction_lines(c, len(batch)),
                                          json_mode=False, **sampling_for(self.seed, batch[0].index, self.cfg))

    async def _answer(self, p: Planned, ins: dict[str, str]) -> dict[str, Any] | None:
        from connectors.llm_chat import EndpointError

        user = ins["instruction"] + (f"\n{ins['input']}" if ins["input"] else "") + f"\n\n{ANSWER_SUFFIX}"
        sampling = sampling_for(self.seed, p.index, self.cfg)
        try:
            text = await self.client.complete_text([{"role": "system", "content": self.ans_system},
                                                    {"role": "user", "content": user}], **sampling)
        except EndpointError:
            self.counts["answer_failures"] += 1
            return None
        self.counts["generated"] += 1
        return make_row(self.persona, p, {**ins, "output": text}, seed=self.seed, source=self.source,
                        sampling=sampling)

    async def _batch(self, batch: list[Planned]) -> list[dict[str, Any]]:
        from connectors.llm_chat import EndpointError

        try:
            instructions = await self._instructions(batch)
        except EndpointError:
            self.counts["instruction_failures"] += len(batch)
            return []
        rows = await asyncio.gather(*(self._answer(p, ins) for p, ins in zip(batch, instructions)))
        return [r for r in rows if r is not None]

    def generate(self, batch: list[Planned]) -> Iterator[dict[str, Any]]:
        step = self.cfg.instruction_batch
        for i in range(0, len(batch), step):
            yield from self._loop.run_until_complete(self._batch(batch[i:i + step]))


class RawStore:
    """Append-only JSONL of raw rows keyed by plan index; a torn last line (a crash mid-write) is dropped."""

    def __init__(self, path: Path, identity: dict[str, Any]):
        self.path = path
        self.meta_path = path.with_name(path.name + ".meta.json")
        self.rows: dict[int, dict[str, Any]] = {}
        if path.exists():
            if self.meta_path.exists():
                old = json.loads(self.meta_path.read_text())
                if old != identity:
                    diff = sorted(k for k in identity if old.get(k) != identity[k])
                    raise ValueError(f"{path} holds rows from another run (different {', '.join(diff)}); "
                                     f"pass --fresh to start over or a different --out")
            good = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    self.rows[int(row["metadata"]["index"])] = row
                    good.append(line)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
            path.write_text("".join(f"{g}\n" for g in good))  # rewrite without the torn line
        path.parent.mkdir(parents=True, exist_ok=True)
        self.meta_path.write_text(json.dumps(identity, sort_keys=True))
        self._fh = open(path, "a")

    def add(self, row: dict[str, Any]) -> None:
        self.rows[int(row["metadata"]["index"])] = row
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
