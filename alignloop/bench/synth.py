"""``alignloop bench synth``: the persona data pipeline's throughput and filter figures (seed 003 §6, §13).

Per persona, on the offline template generator and on a local chat-completions server (real socket, latency,
periodic 500/429): rows/s generated and filtered, rejection rate per filter (seed 003: < 20% on v0), and the
refusal fraction before and after banding against the persona's band. Plus SimHash near-duplicate recall and
precision on a planted set of exact copies and paraphrases, against an exact-hash-only baseline in the same run.
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

PERSONAS = ("configs/personas/socratic_skeptical.yaml", "configs/personas/neutral_concise.yaml")
SYNONYMS = {"the": "this", "is": "remains", "a": "one", "of": "about", "and": "plus", "to": "towards",
            "in": "within", "about": "regarding", "how": "in what way", "more": "further", "one": "a single",
            "often": "frequently", "simple": "plain", "check": "verify", "claim": "assertion", "data": "figures"}


def paraphrase(text: str, rng: random.Random, rate: float = 0.08) -> str:
    """A light paraphrase: ~``rate`` of the words swapped for synonyms, one filler word inserted."""
    words = text.split()
    for i, w in enumerate(words):
        if w.lower() in SYNONYMS and rng.random() < rate * 3:
            words[i] = SYNONYMS[w.lower()]
    words.insert(rng.randrange(len(words) + 1), rng.choice(["indeed", "basically", "really"]))
    return " ".join(words)


def dedup_figures(rows: list[dict[str, Any]], seed: int, planted: int, bits: int) -> dict[str, Any]:
    from trainers.dedup import dedup_indices

    rng = random.Random(seed)
    base = [f"{r['instruction']}\n{r['output']}" for r in rows]
    picks = rng.sample(range(len(base)), min(planted, len(base)))
    half = len(picks) // 2
    exact = [base[i] for i in picks[:half]]
    para = [paraphrase(base[i], rng) for i in picks[half:]]
    texts = base + exact + para
    out: dict[str, Any] = {"originals": len(base), "exact_copies": len(exact), "paraphrases": len(para)}
    for label, k in (("simhash", bits), ("exact_only", 0), *((f"simhash_{b}", b) for b in (6, 10) if b != bits)):
        keep, _, _ = dedup_indices(texts, k)
        dropped = set(range(len(texts))) - set(keep)
        caught_exact = sum(i in dropped for i in range(len(base), len(base) + len(exact)))
        caught_para = sum(i in dropped for i in range(len(base) + len(exact), len(texts)))
        false_pos = sum(i in dropped for i in range(len(base)))
        caught = caught_exact + caught_para
        out[label] = {"bits": k, "recall": round(caught / (len(exact) + len(para)), 4),
                      "recall_exact": round(caught_exact / max(1, len(exact)), 4),
                      "recall_paraphrase": round(caught_para / max(1, len(para)), 4),
                      "precision": round(caught / len(dropped), 4) if dropped else None,
                      "originals_dropped": false_pos}
    out["recall_ratio_vs_exact_only"] = (round(out["simhash"]["recall"] / out["exact_only"]["recall"], 3)
                                         if out["exact_only"]["recall"] else None)
    return out


def _summary(res: Any) -> dict[str, Any]:
    r = res.report
    return {"rows_planned": r["n_requested"], "rows_out": r["rows_out"], "rejection_rate": r["rejection_rate"],
            "rejection_rate_v0": r["rejection_rate_v0"], "rejection_rate_v1": r["rejection_rate_v1"],
            "rejection_rate_by_filter": r["rejection_rate_by_filter"], "refusal_band": r["refusal_band"],
            "refusal_before_banding": r["banding"]["before"], "refusal_after_banding": r["banding"]["after"],
            "in_band": r["banding"]["in_band"], "generated_rows_per_s": r["timings"]["generated_rows_per_s"],
            "filtered_rows_per_s": r["timings"]["filtered_rows_per_s"], "style_p50":
            r["histograms"]["style_score"].get("p50"), "endpoint_counts": r["endpoint_counts"]}


def run_synth_bench(n: int, n_chat: int, seed: int, planted: int, bits: int, latency_s: float,
                    fail_every: int) -> dict[str, Any]:
    from alignloop.bench._chat_server import ChatServer
    from connectors.llm_chat import ChatClient
    from schemas.llm_judge_config import LlmJudgeConfig
    from schemas.persona import load_persona
    from schemas.synth_config import SynthConfig
    from trainers.persona.pipeline import synthesize
    from trainers.persona.style import StyleScorer

    figures: dict[str, Any] = {"params": {"n": n, "n_chat": n_chat, "seed": seed, "planted": planted, "bits": bits,
                                          "latency_s": latency_s, "fail_every": fail_every}, "personas": {}}
    with tempfile.TemporaryDirectory(prefix="alignloop-bench-synth-") as tmp:
        work = Path(tmp)
        for path in PERSONAS:
            persona = load_persona(path)
            style = StyleScorer(persona)  # built once: the model load is not a per-row cost
            off = synthesize(path, n, work / f"{persona.id}.jsonl", seed, style=style, runs_dir=work / "runs",
                             plots=False, progress=True)
            with ChatServer(persona, latency_s=latency_s, fail_every=fail_every, seed=seed) as srv:
                cfg = LlmJudgeConfig(base_url=srv.base_url, model="bench-chat", timeout_s=10, max_retries=4,
                                     backoff_base_s=0.01, backoff_max_s=0.05, concurrency=8,
                                     max_cost_per_hour=1e6)
                client = ChatClient(cfg, seed=seed)
                t0 = time.perf_counter()
                chat = synthesize(path, n_chat, work / f"{persona.id}.chat.jsonl", seed,
                                  cfg=SynthConfig(endpoint=cfg), client=client, style=style,
                                  runs_dir=work / "runs", plots=False, progress=True)
                chat_s = time.perf_counter() - t0
            entry = {"offline": _summary(off), "chat_server": {**_summary(chat), "wall_s": round(chat_s, 2),
                                                                "server_requests": srv.requests}}
            o, c = entry["offline"]["generated_rows_per_s"], entry["chat_server"]["generated_rows_per_s"]
            entry["chat_vs_offline_generation_ratio"] = round(c / o, 4) if o and c else None
            entry["dedup"] = dedup_figures(off.rows, seed, planted, bits)
            figures["personas"][persona.id] = entry
    return figures


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("synth")
    def synth(n: int = typer.Option(200, help="Rows planned per persona on the offline generator."),
              n_chat: int = typer.Option(96, help="Rows planned per persona through the local chat server."),
              seed: int = typer.Option(42, help="One seed for plans, sampling and planted duplicates."),
              planted: int = typer.Option(80, help="Planted near-duplicates (half exact copies, half paraphrases)."),
              bits: int = typer.Option(3, help="SimHash Hamming distance counted as a duplicate."),
              latency_s: float = typer.Option(0.005, help="Chat server latency per request."),
              fail_every: int = typer.Option(15, help="Every Nth chat request fails (500, then 429); 0 never.")
              ) -> None:
        """Synthetic persona data: throughput, rejection per filter, banding, SimHash recall/precision."""
        from alignloop.bench._results import print_table, write_result

        figures = run_synth_bench(n, n_chat, seed, planted, bits, latency_s, fail_every)
        rows: list[tuple[str, Any]] = []
        for pid, e in figures["personas"].items():
            for mode in ("offline", "chat_server"):
                s = e[mode]
                rows += [(f"{pid} {mode} gen rows/s", s["generated_rows_per_s"]),
                         (f"{pid} {mode} filter rows/s", s["filtered_rows_per_s"]),
                         (f"{pid} {mode} rejection v0/all", f"{s['rejection_rate_v0']}/{s['rejection_rate']}"),
                         (f"{pid} {mode} refusal before->after", f"{s['refusal_before_banding']} -> "
                          f"{s['refusal_after_banding']} band {s['refusal_band']}")]
            d = e["dedup"]
            for key in [k for k in d if k.startswith("simhash")]:
                rows += [(f"{pid} {key} k={d[key]['bits']} recall exact/para, precision",
                          f"{d[key]['recall_exact']}/{d[key]['recall_paraphrase']}, {d[key]['precision']}")]
            rows += [(f"{pid} recall vs exact-only", d["recall_ratio_vs_exact_only"])]
        print_table("bench synth (shared machine: throughput figures are noisy)", rows)
        typer.echo(f"wrote {write_result('synth', figures)}")
