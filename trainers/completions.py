"""Completion generation (seed 001): K completions per prompt from one or more OpenAI-compatible backends.

Each sample k of a prompt gets its own temperature / top-p, drawn deterministically from (seed, prompt, k) inside
the configured ranges. Requests go through ``connectors.llm_chat.ChatClient`` (the LLM judge's discipline: deadline,
retries with backoff, concurrency limit, rolling spend cap, counters; one client per backend, key a SecretStr).
A content-fingerprint cache (SQLite) keyed by sha256(backend model + base URL, messages, sampling, k) answers a
repeated request without calling the API; hits and calls saved are counted. A failed request is counted and left
out of the output (a re-run retries it; what succeeded is cached).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.llm_judge_config import LlmJudgeConfig


class Backend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=r"^[A-Za-z0-9._-]+$")
    client: LlmJudgeConfig = Field(..., description="base_url, model, api_key_env, timeouts, caps.")


class CompletionsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backends: list[Backend] = Field(..., min_length=1)
    temperature: tuple[float, float] = (0.7, 1.0)
    top_p: tuple[float, float] = (0.8, 0.95)
    max_tokens: int = Field(256, ge=1)
    system: str = Field("You are a helpful assistant.", description="System prompt for every request.")


def sampling(seed: int, prompt: str, k: int, cfg: CompletionsConfig) -> dict[str, float]:
    rng = random.Random(f"{seed}:{hashlib.sha256(prompt.encode()).hexdigest()}:{k}")
    return {"temperature": round(rng.uniform(*cfg.temperature), 3), "top_p": round(rng.uniform(*cfg.top_p), 3)}


def fingerprint(backend: Backend, messages: list[dict[str, str]], params: dict[str, Any], k: int) -> str:
    blob = json.dumps({"model": backend.client.model, "url": backend.client.base_url, "messages": messages,
                       "params": params, "k": k}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """fingerprint -> completion text, in SQLite (survives runs; one writer)."""

    def __init__(self, path: str | Path | None):
        self.db = sqlite3.connect(":memory:" if path is None else str(path))
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT text FROM completions WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, text: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?)", (key, text))
        self.db.commit()

    def close(self) -> None:
        self.db.close()


@dataclass
class Stats:
    requests: int = 0
    cache_hits: int = 0
    api_calls: int = 0
    failures: int = 0
    per_backend: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "api_calls": self.api_calls,
                "failures": self.failures, "hit_rate": round(self.hit_rate, 4),
                "api_calls_saved": self.cache_hits, "per_backend": self.per_backend}


def generate(prompts: list[dict[str, Any]], cfg: CompletionsConfig, k: int, seed: int, cache: Cache,
             clients: dict[str, Any]) -> tuple[list[dict[str, Any]], Stats]:
    """Rows ``{prompt_id, prompt, completions: [{backend, model, k, temperature, top_p, text, cached}]}``."""
    from connectors.llm_chat import EndpointError

    stats = Stats()

    async def one(b: Backend, prompt: str, j: int) -> dict[str, Any] | None:
        messages = [{"role": "system", "content": cfg.system}, {"role": "user", "content": prompt}]
        params = {**sampling(seed, prompt, j, cfg), "max_tokens": cfg.max_tokens}
        key = fingerprint(b, messages, params, j)
        stats.requests += 1
        per = stats.per_backend.setdefault(b.name, {"requests": 0, "cache_hits": 0, "failures": 0})
        per["requests"] += 1
        text = cache.get(key)
        cached = text is not None
        if cached:
            stats.cache_hits += 1
            per["cache_hits"] += 1
        else:
            stats.api_calls += 1
            try:
                text = await clients[b.name].complete_text(messages, **params)
            except EndpointError:
                stats.failures += 1
                per["failures"] += 1
                return None
            cache.put(key, text)
        return {"backend": b.name, "model": b.client.model, "k": j, **params, "text": text, "cached": cached}

    async def run() -> list[list[dict[str, Any] | None]]:
        return [await asyncio.gather(*(one(b, p["prompt"], j) for b in cfg.backends for j in range(k)))
                for p in prompts]

    loop = asyncio.new_event_loop()
    try:
        results = loop.run_until_complete(run())
        for c in clients.values():
            loop.run_until_complete(c.aclose())
    finally:
        loop.close()
    rows = [{"prompt_id": p.get("id", f"p{i}"), "prompt": p["prompt"], "completions": [c for c in res if c]}
            for i, (p, res) in enumerate(zip(prompts, results))]
    return rows, stats
