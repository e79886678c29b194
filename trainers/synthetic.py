"""Synthetic SFT and preference data with a known ground truth, for smoke runs, tests and benchmarks.

Responses are short word sequences. Every word has a hidden utility (+1 helpful, -1 harmful, 0 filler); a
response's true reward is the sum. A preference between two responses is drawn from the Bradley-Terry model
P(a beats b) = sigmoid(scale * (r_a - r_b)), so the best achievable accuracy and the right confidences are known.
"""
from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

GOOD = ["clear", "precise", "helpful", "sourced", "careful", "concise", "kind", "accurate", "safe", "honest"]
BAD = ["rude", "vague", "wrong", "toxic", "sloppy", "insulting", "unsafe", "evasive", "careless", "hostile"]
FILLER = ["the", "answer", "is", "about", "this", "topic", "and", "it", "here", "so"]
TOPICS = ["taxes", "travel", "python", "gardens", "weather", "music", "history", "cooking", "health", "kafka"]
UTILITY = {**{w: 1.0 for w in GOOD}, **{w: -1.0 for w in BAD}, **{w: 0.0 for w in FILLER}}
REFUSAL = "sorry i cannot help with that"


def corpus() -> list[str]:
    """Every word the synthetic data uses (for a tiny tokenizer), plus the prompt template's words."""
    return [" ".join(GOOD + BAD + FILLER + TOPICS), "User : tell me about Assistant", REFUSAL,
            "explain how why what is a of to in for you please"]


def true_reward(text: str) -> float:
    return sum(UTILITY.get(w, 0.0) for w in text.split())


def _response(rng: random.Random, length: int, p_good: float, p_bad: float) -> str:
    words = []
    for _ in range(length):
        u = rng.random()
        pool = GOOD if u < p_good else BAD if u < p_good + p_bad else FILLER
        words.append(rng.choice(pool))
    return " ".join(words)


def _meta(i: int, start: datetime, offset0: int, topic: str) -> dict[str, Any]:
    ts = start + timedelta(seconds=i)
    return {"date": ts.strftime("%Y-%m-%d"), "created_at": ts, "src_topic": topic, "src_partition": i % 2,
            "src_offset": offset0 + i // 2}


def preference_rows(n: int, seed: int = 0, *, scale: float = 1.5, length: int = 6, deterministic: bool = False,
                    separable: bool = False, offset0: int = 0, turns_per_conversation: int = 2) -> list[dict[str, Any]]:
    """``n`` rows in the ``preferences`` schema. ``deterministic``: the higher-reward response always wins;
    ``separable``: one response is mostly helpful words, the other mostly harmful ones (an easy task for DPO)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        prompt = f"tell me about {rng.choice(TOPICS)}"
        while True:
            if separable:
                a, b = _response(rng, length, 0.7, 0.0), _response(rng, length, 0.0, 0.7)
                if rng.random() < 0.5:
                    a, b = b, a
            else:
                a = _response(rng, length, rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.6))
                b = _response(rng, length, rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.6))
            if a != b and true_reward(a) != true_reward(b):
                break
        p_a = 1.0 / (1.0 + math.exp(-scale * (true_reward(a) - true_reward(b))))
        a_wins = (true_reward(a) > true_reward(b)) if deterministic else rng.random() < p_a
        chosen, rejected = (a, b) if a_wins else (b, a)
        rows.append({
            "pref_id": f"pref-{seed}-{i}", "prompt": prompt, "candidates": [a, b], "chosen_idx": 0 if a_wins else 1,
            "rejected_idx": 1 if a_wins else 0, "chosen": chosen, "rejected": rejected,
            "strength": abs(2 * p_a - 1), "rationale": "synthetic", "safety_tags": [], "source": "rule",
            "annotator": "synthetic", "trace_id": f"tr-{seed}-{i}",
            "conversation_id": f"conv-{seed}-{i // turns_per_conversation}", "policy_id": "base",
            "judge_versions_json": "{}", "metadata_json": json.dumps({"p_true": p_a if a_wins else 1 - p_a}),
            **_meta(i, start, offset0, "feedback.preferences"),
        })
    return rows


def sft_rows(n: int, seed: int = 0, *, length: int = 6, offset0: int = 0,
             turns_per_conversation: int = 2) -> list[dict[str, Any]]:
    """``n`` rows in the ``sft_examples`` schema: helpful responses to topic prompts."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        resp = _response(rng, length, 0.7, 0.0)
        rows.append({
            "example_id": f"ex-{seed}-{i}", "trace_id": f"tr-{seed}-{i}",
            "conversation_id": f"conv-{seed}-{i // turns_per_conversation}", "policy_id": "base",
            "prompt": f"tell me about {rng.choice(TOPICS)}", "response": resp, "domain": "synthetic",
            "score": min(1.0, 0.5 + true_reward(resp) / 12), "confidence": rng.uniform(0.5, 1.0),
            "judge_versions_json": "{}", **_meta(i, start, offset0, "traces.judged"),
        })
    return rows


def write_rows(uri: str, table: str, rows: list[dict[str, Any]], mode: str = "append") -> int:
    """Append rows to a Delta table with its registered Arrow schema; returns the new table version."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from schemas.tables import TABLES

    schema, partition_by = TABLES[table]
    write_deltalake(uri, pa.Table.from_pylist(rows, schema=schema), mode=mode, partition_by=partition_by or None)
    return int(DeltaTable(uri).version())
