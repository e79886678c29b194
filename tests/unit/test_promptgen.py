"""`prompts generate` (seed 001): templated prompts cover every requested category x difficulty, constraints and
SimHash dedup reject what they should, evolution mutates and recombines (offline and through an endpoint),
free-form asks an endpoint and survives it failing."""
from __future__ import annotations

import json
from collections import Counter

from schemas.llm_judge_config import LlmJudgeConfig
from tests.fakes.llm_server import FakeLlmServer
from trainers import promptgen as pg


def test_templated_covers_categories_and_difficulties_deterministically():
    rows = pg.templated(["general", "code-lite"], ["easy", "hard"], 40, seed=3)
    assert Counter((r["category"], r["difficulty"]) for r in rows) == {
        ("general", "easy"): 10, ("code-lite", "easy"): 10, ("general", "hard"): 10, ("code-lite", "hard"): 10}
    assert rows == pg.templated(["general", "code-lite"], ["easy", "hard"], 40, seed=3)
    out, rejected = pg.finish(rows + rows[:5], pg.Constraints(), seed=3)
    assert rejected["duplicate"] >= 5 and len(out) <= 40 and out[0]["id"] == "prompt-3-000000"


def test_constraints_reject_with_reasons():
    rows = [{"prompt": p, "category": c, "difficulty": "easy", "source": "t"} for p, c in [
        ("Explain SQL indexes with an example.", "code-lite"), ("x" * 500, "general"),
        ("Tell me about the casino business.", "general"), ("Explain recursion.", "code-lite")]]
    cons = pg.Constraints(max_chars=200, forbid=["casino"], require_any={"code-lite": ["sql", "python"]})
    out, rejected = pg.finish(rows, cons, seed=1)
    assert [r["prompt"] for r in out] == ["Explain SQL indexes with an example."]
    assert rejected == {"too_long": 1, "forbidden_term": 1, "missing_required_term": 1, "duplicate": 0}


def test_evolve_offline_and_through_an_endpoint():
    seeds = pg.templated(["general", "reasoning"], ["medium"], 6, seed=2)
    kids = pg.evolve(seeds, 30, seed=2)
    assert len(kids) == 30 and all(k["prompt"] != k["parent"] and k["prompt"].startswith(k["parent"]) for k in kids)
    assert {k["source"] for k in kids} >= {"evolve:recombine", "evolve:constrain"}

    def responder(messages):
        user = messages[-1]["content"]
        if user.startswith("Write "):
            return "\n".join(json.dumps({"instruction": f"Question {i} about tax law?"}) for i in range(5))
        return "EVOLVED: " + user.splitlines()[1][:80]

    with FakeLlmServer() as fake:
        fake.responder = responder
        fake.script(["500", "429"])
        cfg = LlmJudgeConfig(base_url=fake.base_url, model="m", backoff_base_s=0.01, backoff_max_s=0.02)
        from connectors.llm_chat import ChatClient

        counts: dict[str, int] = {}
        llm_kids = pg.evolve(seeds, 8, 2, ChatClient(cfg), counts)
        assert len(llm_kids) == 8 and all(k["prompt"].startswith("EVOLVED: ") for k in llm_kids)
        free = pg.free_form("About tax law.", 5, ChatClient(cfg), "general")
        assert [r["prompt"] for r in free][0] == "Question 0 about tax law?" and len(free) == 5
    down: dict[str, int] = {}
    dead = LlmJudgeConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, backoff_base_s=0.01,
                          backoff_max_s=0.02)
    assert pg.free_form("x", 3, ChatClient(dead), counts=down) == [] and down["endpoint_failures"] == 1
