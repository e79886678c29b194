"""`completions generate` (seed 001): K completions per prompt per backend with per-sample temperature/top-p; a
repeated request is answered from the content-fingerprint cache (no API call); a failing backend is retried,
counted, never a crash; the CLI writes one row per prompt."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from schemas.llm_judge_config import LlmJudgeConfig
from tests.fakes.llm_server import FakeLlmServer
from trainers.completions import Backend, Cache, CompletionsConfig, generate


def _echo(messages):
    return f"answer to: {messages[-1]['content']}"


def _clients(cfg):
    from connectors.llm_chat import ChatClient

    return {b.name: ChatClient(b.client, seed=1) for b in cfg.backends}


def test_k_samples_two_backends_cache_hits(tmp_path: Path):
    with FakeLlmServer() as a, FakeLlmServer() as b:
        a.responder = b.responder = _echo
        a.script(["500", "429"])
        fast = dict(backoff_base_s=0.01, backoff_max_s=0.02)
        cfg = CompletionsConfig(backends=[Backend(name="a", client=LlmJudgeConfig(base_url=a.base_url, model="ma",
                                                                                    **fast)),
                                          Backend(name="b", client=LlmJudgeConfig(base_url=b.base_url, model="mb",
                                                                                    **fast))])
        prompts = [{"id": "p1", "prompt": "hi"}, {"id": "p2", "prompt": "bye"}, {"id": "p3", "prompt": "hi"}]
        cache = Cache(tmp_path / "c.sqlite")
        rows, stats = generate(prompts, cfg, 3, 7, cache, _clients(cfg))
        assert [len(r["completions"]) for r in rows] == [6, 6, 6]
        # p3 repeats p1: all six served from the cache
        assert stats.requests == 18 and stats.cache_hits == 6 and stats.api_calls == 12 and stats.failures == 0
        assert all(c["cached"] for c in rows[2]["completions"])
        temps = {c["temperature"] for c in rows[0]["completions"] if c["backend"] == "a"}
        assert len(temps) == 3 and all(0.7 <= t <= 1.0 for t in temps)
        sent = a.requests + b.requests
        # only p1 reached the APIs: 6 samples, plus the retries of the scripted 500 and 429 (the first requests)
        assert len([r for r in sent if r["messages"][-1]["content"] == "hi"]) == 6 + 2
        # a second run of the same workload costs nothing
        rows2, stats2 = generate(prompts, cfg, 3, 7, cache, _clients(cfg))
        assert stats2.hit_rate == 1.0 and stats2.api_calls == 0 and stats2.cache_hits == 18 and [c["text"] for c in rows2[0]["completions"]] == \
            [c["text"] for c in rows[0]["completions"]]


def test_dead_backend_counted_and_cli_writes_rows(tmp_path: Path):
    from alignloop.cli import app

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    with FakeLlmServer() as ok:
        ok.responder = _echo
        res = CliRunner().invoke(app, ["completions", "generate", "--prompts", str(prompts), "--out",
                                       str(tmp_path / "o.jsonl"), "--k", "2", "--cache", str(tmp_path / "c.sqlite"),
                                       "--backend", f"up={ok.base_url}@m1",
                                       "--backend", "down=http://127.0.0.1:9/v1@m2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output.splitlines()[0])
    assert stats["per_backend"]["down"]["failures"] == 4 and stats["per_backend"]["up"]["failures"] == 0
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [len(r["completions"]) for r in rows] == [2, 2] and {c["backend"] for r in rows for c in r["completions"]} \
        == {"up"}
