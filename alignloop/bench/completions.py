"""``alignloop bench completions``: the content-fingerprint cache on a repeated workload (seed 001 SM1.4 asks for
> 30% cost efficiency). A workload of prompts drawn with repetition (Zipf-like: a few prompts are asked often) runs
twice through a local chat-completions server — without the cache (baseline: every request is an API call) and
with it — and the same run reports hit rate, API calls saved and the cost ratio."""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import typer


def run_completions_bench(unique: int, workload: int, k: int, seed: int, zipf: float) -> dict[str, Any]:
    from alignloop.bench._chat_server import ChatServer
    from connectors.llm_chat import ChatClient
    from schemas.llm_judge_config import LlmJudgeConfig
    from schemas.persona import load_persona
    from trainers.completions import Backend, Cache, CompletionsConfig, generate
    from trainers.promptgen import templated

    rng = random.Random(seed)
    pool = templated(["general", "reasoning", "social", "code-lite"], ["easy", "medium", "hard"], unique, seed)
    weights = [1 / (i + 1) ** zipf for i in range(len(pool))]
    prompts = [{"id": f"w{i}", "prompt": rng.choices(pool, weights)[0]["prompt"]} for i in range(workload)]
    persona = load_persona("configs/personas/neutral_concise.yaml")
    out: dict[str, Any] = {"params": {"unique": unique, "workload": workload, "k": k, "seed": seed, "zipf": zipf},
                           "distinct_prompts_in_workload": len({p["prompt"] for p in prompts})}
    with ChatServer(persona, latency_s=0.002, seed=seed) as srv, tempfile.TemporaryDirectory() as tmp:
        cfg = CompletionsConfig(backends=[Backend(name="local", client=LlmJudgeConfig(
            base_url=srv.base_url, model="bench", concurrency=8, max_cost_per_hour=1e6))])
        for label, cache_path in (("no_cache", None), ("cache", Path(tmp) / "c.sqlite")):
            before = srv.requests
            cache = Cache(cache_path) if cache_path else None
            t0 = time.perf_counter()
            if cache is None:  # baseline: a fresh in-memory cache per request = no reuse at all
                stats = None
                calls = 0
                for p in prompts:
                    c = Cache(None)
                    _, s = generate([p], cfg, k, seed, c, {"local": ChatClient(cfg.backends[0].client)})
                    calls += s.api_calls
                    c.close()
                out[label] = {"api_calls": calls, "server_requests": srv.requests - before,
                              "seconds": round(time.perf_counter() - t0, 2)}
            else:
                _, stats = generate(prompts, cfg, k, seed, cache, {"local": ChatClient(cfg.backends[0].client)})
                cache.close()
                out[label] = {**stats.as_dict(), "server_requests": srv.requests - before,
                              "seconds": round(time.perf_counter() - t0, 2)}
    base = out["no_cache"]["api_calls"]
    out["api_calls_saved"] = base - out["cache"]["api_calls"]
    out["cost_ratio_cache_vs_no_cache"] = round(out["cache"]["api_calls"] / base, 4) if base else None
    out["cost_saving"] = round(1 - out["cost_ratio_cache_vs_no_cache"], 4) if base else None
    return out


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("completions")
    def completions(unique: int = typer.Option(60, help="Distinct prompts in the pool."),
                    workload: int = typer.Option(200, help="Requests in the workload (drawn with repetition)."),
                    k: int = typer.Option(2, help="Completions per prompt."),
                    seed: int = typer.Option(42),
                    zipf: float = typer.Option(1.0, help="Skew of prompt popularity (0: uniform).")) -> None:
        """Completion cache hit rate and API calls saved on a repeated workload, vs no cache."""
        from alignloop.bench._results import print_table, write_result

        f = run_completions_bench(unique, workload, k, seed, zipf)
        print_table("bench completions", [
            ("requests", f["cache"]["requests"]), ("distinct prompts", f["distinct_prompts_in_workload"]),
            ("api calls without cache", f["no_cache"]["api_calls"]), ("api calls with cache", f["cache"]["api_calls"]),
            ("cache hit rate", f["cache"]["hit_rate"]), ("api calls saved", f["api_calls_saved"]),
            ("cost saving", f["cost_saving"])])
        typer.echo(f"wrote {write_result('completions', f)}")
