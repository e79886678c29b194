"""bench synth's pieces: the planted-duplicate scorer counts exact copies and paraphrases correctly, and the local
chat server speaks seed 003's two prompts (an instruction line per requested item, persona-shaped answers)."""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from alignloop.bench._chat_server import ChatServer
from alignloop.bench.synth import dedup_figures
from schemas.persona import load_persona
from schemas.synth_config import SynthConfig
from trainers.persona.synth import OfflineGenerator, plan

REPO = Path(__file__).resolve().parents[2]


def test_planted_duplicates_are_scored():
    persona = load_persona(REPO / "configs/personas/socratic_skeptical.yaml")
    rows = list(OfflineGenerator(persona, 4).generate(plan(60, 4, SynthConfig())))
    rows = [r for r in rows if r["metadata"]["domain"] != "safety-edge"]
    d = dedup_figures(rows, seed=1, planted=20, bits=3)
    assert d["exact_copies"] == 10 and d["paraphrases"] == 10
    assert d["exact_only"]["recall_exact"] == 1.0 and d["exact_only"]["recall_paraphrase"] == 0.0
    assert d["simhash"]["recall_exact"] == 1.0 and d["simhash"]["recall"] >= d["exact_only"]["recall"]
    assert d["simhash_10"]["recall_paraphrase"] >= d["simhash"]["recall_paraphrase"]


def test_chat_server_speaks_the_synth_prompts():
    persona = load_persona(REPO / "configs/personas/neutral_concise.yaml")
    with ChatServer(persona, latency_s=0, fail_every=2) as srv:
        body = {"model": "m", "messages": [{"role": "system", "content": "You design tasks matching ..."},
                                           {"role": "user", "content": "1. domain: social; difficulty: easy\n"
                                                                       "2. domain: reasoning; difficulty: hard"}]}
        ok = httpx.post(f"{srv.base_url}/chat/completions", json=body)
        failed = httpx.post(f"{srv.base_url}/chat/completions", json=body)
        lines = ok.json()["choices"][0]["message"]["content"].splitlines()
        assert ok.status_code == 200 and len(lines) == 2 and all(json.loads(x)["instruction"] for x in lines)
        assert failed.status_code == 500
        ans = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": [
            {"role": "system", "content": "You are the model producing answers"},
            {"role": "user", "content": "What is glaciers?"}]}).json()["choices"][0]["message"]["content"]
        assert ans.startswith("Answer: ") and "\nNote: " in ans
