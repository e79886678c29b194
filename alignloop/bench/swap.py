"""`alignloop bench swap`: adapter attach / switch cost against plain PEFT, multiplexing cost, output checks.

In one run, on a tiny local model on CPU (and on a ~1B-parameter Llama built from a config when CUDA is there):
- attach (files read, hashed, checked, loaded into the model; warm-up apart) and switch (make it the active
  adapter) p50/p99, against PEFT's own ``load_adapter`` + ``set_adapter`` on a second copy of the base;
- requests/s and p99 through the HTTP server with 1, 4 and 16 resident adapters and per-request mixed adapters,
  against one adapter: the cost of multiplexing as a ratio;
- two adapters on the 10 demo prompts (how many answers differ), and server output == PEFT in-process, token for
  token, greedy.
Measurements on a shared CPU are noisy; the ratios within one run are what to read.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import typer

DEMO_PROMPTS = ["tell me about python", "explain kafka", "what is music", "tell me about taxes", "explain history",
                "what is travel", "tell me about gardens", "explain cooking", "what is health",
                "tell me about weather"]


def register(bench_app: typer.Typer) -> None:
    bench_app.command("swap")(swap)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000 if xs else float("nan")


def _stats(xs: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_pct(xs, 0.5), 4), "p99_ms": round(_pct(xs, 0.99), 4), "n": len(xs)}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def attach_switch(base: str, dirs: list[Path], rounds: int) -> dict[str, Any]:
    """Ours vs PEFT: attach each adapter ``rounds`` times (evicted in between), then switch among them."""
    from peft import PeftModel

    from trainers.model_loading import load_base
    from trainers.serving.generation import select_adapter
    from trainers.serving.runtime import ServingRuntime

    rt = ServingRuntime(base, max_resident=len(dirs) + 1, golden_prompts=()).load()
    ours_attach, ours_switch = [], []
    try:
        keep = rt.attach_sync(dirs[0])  # PEFT needs one adapter; the first one stays on both sides
        for i in range(rounds):
            for d in dirs[1:]:
                t = time.perf_counter()
                res = rt.attach_sync(d)
                ours_attach.append(time.perf_counter() - t)
                if i < rounds - 1:
                    rt.evict(res.content_hash)
        resident = [keep] + [rt.lookup(str(d))[0] for d in dirs[1:]]
        for i in range(rounds * 10):
            res = resident[i % len(resident)]
            t = time.perf_counter()
            rt.run_on_model(select_adapter, rt, res).result()
            ours_switch.append(time.perf_counter() - t)
        # the switch alone, without the hop onto the worker thread
        inline = []
        for i in range(rounds * 10):
            t = time.perf_counter()
            select_adapter(rt, resident[i % len(resident)])
            inline.append(time.perf_counter() - t)
        device = str(next(rt.base.parameters()).device)
    finally:
        rt.close()
    model, _ = load_base(base)
    if device.startswith("cuda"):
        model = model.to(device)
    peft = PeftModel.from_pretrained(model, str(dirs[0]), adapter_name="p0")
    peft_attach, peft_switch = [], []
    for i in range(rounds):
        for j, d in enumerate(dirs[1:], 1):
            t = time.perf_counter()
            peft.load_adapter(str(d), adapter_name=f"p{j}")
            peft_attach.append(time.perf_counter() - t)
            if i < rounds - 1:
                peft.delete_adapter(f"p{j}")
    for i in range(rounds * 10):
        t = time.perf_counter()
        peft.set_adapter(f"p{i % len(dirs)}")
        peft_switch.append(time.perf_counter() - t)
    out = {"attach": {"ours": _stats(ours_attach), "peft": _stats(peft_attach)},
           "switch": {"ours": _stats(ours_switch), "ours_inline": _stats(inline), "peft": _stats(peft_switch)},
           "device": device}
    out["attach"]["ratio_p50"] = _ratio(out["attach"]["ours"]["p50_ms"], out["attach"]["peft"]["p50_ms"])
    out["switch"]["ratio_p50"] = _ratio(out["switch"]["ours_inline"]["p50_ms"], out["switch"]["peft"]["p50_ms"])
    return out


def throughput(base: str, dirs: list[Path], requests: int, max_tokens: int, clients: int) -> dict[str, Any]:
    """Requests/s and latency through the HTTP server: one adapter vs N resident with per-request mixed ones."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from alignloop.serve.app import create_app
    from alignloop.serve.server import ThreadServer
    from trainers.serving.runtime import ServingRuntime

    rt = ServingRuntime(base, max_resident=len(dirs), golden_prompts=()).load()
    out: dict[str, Any] = {}
    try:
        hashes = [rt.attach_sync(d).content_hash for d in dirs]
        with ThreadServer(create_app(rt)) as srv, httpx.Client(base_url=srv.url, timeout=120) as http:
            def one(model: str, prompt: str) -> float:
                t = time.perf_counter()
                r = http.post("/v1/chat/completions", json={"model": model, "max_tokens": max_tokens,
                              "temperature": 0, "messages": [{"role": "user", "content": prompt}]})
                r.raise_for_status()
                return time.perf_counter() - t

            for n in sorted({1, 4, 16, len(dirs)} & set(range(1, len(dirs) + 1))):
                rng = random.Random(n)
                models = [hashes[0] if n == 1 else rng.choice(hashes[:n]) for _ in range(requests)]
                one(models[0], DEMO_PROMPTS[0])  # warm the path
                started = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    lat = list(pool.map(one, models, [DEMO_PROMPTS[i % 10] for i in range(requests)]))
                wall = time.perf_counter() - started
                out[f"resident_{n}"] = {"requests_per_s": round(requests / wall, 2), **_stats(lat),
                                        "mixed": n > 1}
    finally:
        rt.close()
    single = out["resident_1"]
    for key, row in out.items():
        row["rps_vs_single"] = _ratio(row["requests_per_s"], single["requests_per_s"])
        row["p99_vs_single"] = _ratio(row["p99_ms"], single["p99_ms"])
    return out


def outputs(base: str, a: Path, b: Path, max_tokens: int) -> dict[str, Any]:
    """The 10 demo prompts through two adapters (server, greedy) and through plain PEFT in-process."""
    import torch
    from peft import PeftModel

    from trainers.model_loading import load_base, render_prompt
    from trainers.serving.generation import GenerationRequest, generate_on_model
    from trainers.serving.runtime import ServingRuntime

    rt = ServingRuntime(base, max_resident=2, golden_prompts=()).load()
    try:
        ra, rb = rt.attach_sync(a), rt.attach_sync(b)

        def gen(res: Any, p: str) -> list[int]:
            req = GenerationRequest(rt.encode([{"role": "user", "content": p}]), max_new_tokens=max_tokens)
            return rt.run_on_model(generate_on_model, rt, req, res).result().token_ids

        served_a, served_b = [gen(ra, p) for p in DEMO_PROMPTS], [gen(rb, p) for p in DEMO_PROMPTS]
        tok = rt.tokenizer
    finally:
        rt.close()
    model, _ = load_base(base)
    peft = PeftModel.from_pretrained(model, str(a)).eval()
    ref = []
    with torch.inference_mode():
        for p in DEMO_PROMPTS:
            ids = tok(render_prompt(p), return_tensors="pt", add_special_tokens=False).to(model.device)
            g = peft.generate(**ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=tok.eos_token_id)
            ref.append(g[0, ids["input_ids"].shape[1]:].tolist())
    return {"prompts": len(DEMO_PROMPTS), "differ_between_adapters": sum(x != y for x, y in zip(served_a, served_b)),
            "server_equals_peft": sum(x == y for x, y in zip(served_a, ref)),
            "samples": [{"prompt": p, "a": tok.decode(x, skip_special_tokens=True),
                         "b": tok.decode(y, skip_special_tokens=True)}
                        for p, x, y in zip(DEMO_PROMPTS[:3], served_a, served_b)]}


GPU_LLAMA = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
                 num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=2048)  # ~1.1B parameters


def large_case(root: Path, rounds: int, shape: dict[str, int] = GPU_LLAMA) -> dict[str, Any]:
    """A Llama of ``shape`` from a config (random weights, bf16) with rank-16 adapters: attach/switch, ours vs PEFT,
    on whatever device the runtime picks (the GPU when there is one). The test suite runs it with a small shape on
    CPU, so the GPU run is the same code."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.synthetic import corpus
    from trainers.tiny import build_tokenizer
    from trainers.serving.tiny_adapters import make_adapter

    tok = build_tokenizer(corpus())
    cfg = LlamaConfig(**shape, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    base = root / "base-large"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    dirs = [make_adapter(str(base), root / f"g{i}", seed=i, r=16, alpha=32, name=f"g{i}", model=model)
            for i in range(5)]
    del model
    out = attach_switch(str(base), dirs, rounds)
    out["params"] = params
    out["shape"] = dict(shape)
    return out


def _gpu_case(root: Path, rounds: int) -> dict[str, Any] | None:
    """The ~1B case, when CUDA is here."""
    import torch

    return large_case(root, rounds) if torch.cuda.is_available() else None


def swap(requests: int = typer.Option(48, "--requests", help="Requests per throughput case."),
         rounds: int = typer.Option(5, "--rounds", help="Attach rounds per adapter."),
         adapters: int = typer.Option(16, "--adapters", help="Most adapters resident."),
         max_tokens: int = typer.Option(8, "--max-tokens"),
         clients: int = typer.Option(4, "--clients", help="Concurrent HTTP clients.")) -> None:
    """Attach/switch vs plain PEFT, multiplexing cost, adapter outputs and server == PEFT parity."""
    from rich.progress import Progress

    from alignloop.bench._results import print_table, write_result
    from trainers.hf_common import quiet_hf
    from trainers.serving.tiny_adapters import make_adapter
    from trainers.synthetic import corpus
    from trainers.tiny import build_tiny_model
    from trainers.model_loading import load_base

    quiet_hf()
    with tempfile.TemporaryDirectory(prefix="alignloop-bench-swap-") as tmp, Progress(transient=True) as bar:
        root = Path(tmp)
        task = bar.add_task("building tiny base + adapters", total=5)
        base = str(build_tiny_model(root / "base", corpus(), hidden=64, layers=4, max_positions=512))
        model, _ = load_base(base, bf16=False)
        dirs = [make_adapter(base, root / f"a{i}", seed=i, r=16, alpha=32, name=f"a{i}", model=model)
                for i in range(max(adapters, 2))]
        del model
        bar.update(task, advance=1, description="attach / switch (CPU)")
        cpu = attach_switch(base, dirs[:5], rounds)
        bar.update(task, advance=1, description="throughput with 1/4/16 resident")
        tput = throughput(base, dirs, requests, max_tokens, clients)
        bar.update(task, advance=1, description="outputs and parity")
        outs = outputs(base, dirs[0], dirs[1], 12)
        bar.update(task, advance=1, description="GPU ~1B (when CUDA is available)")
        gpu = _gpu_case(root, rounds)
        bar.update(task, advance=1)
    figures = {"tiny_model": "Llama hidden 64 x 4 layers, rank-16 LoRA on attn+mlp", "cpu": cpu,
               "throughput": tput, "outputs": outs, "gpu": gpu,
               "params": {"requests": requests, "rounds": rounds, "adapters": adapters, "max_tokens": max_tokens,
                          "clients": clients}}
    path = write_result("swap", figures)
    rows = [("attach p50 ms (ours / PEFT)", f"{cpu['attach']['ours']['p50_ms']:.2f} / {cpu['attach']['peft']['p50_ms']:.2f}"),
            ("attach p99 ms (ours / PEFT)", f"{cpu['attach']['ours']['p99_ms']:.2f} / {cpu['attach']['peft']['p99_ms']:.2f}"),
            ("switch p50 ms (ours inline / via worker / PEFT)",
             f"{cpu['switch']['ours_inline']['p50_ms']:.3f} / {cpu['switch']['ours']['p50_ms']:.3f} / "
             f"{cpu['switch']['peft']['p50_ms']:.3f}")]
    for key, row in tput.items():
        rows.append((f"{key} req/s, p99 ms (x single)", f"{row['requests_per_s']:.1f}, {row['p99_ms']:.0f} "
                     f"({row['rps_vs_single']}x, {row['p99_vs_single']}x)"))
    rows += [("demo prompts differing between 2 adapters", f"{outs['differ_between_adapters']}/{outs['prompts']}"),
             ("server == PEFT token for token", f"{outs['server_equals_peft']}/{outs['prompts']}")]
    if gpu:
        rows += [("GPU 1B attach p50 ms (ours / PEFT)", f"{gpu['attach']['ours']['p50_ms']:.1f} / "
                  f"{gpu['attach']['peft']['p50_ms']:.1f}"),
                 ("GPU 1B switch p50 ms (ours / PEFT)", f"{gpu['switch']['ours_inline']['p50_ms']:.3f} / "
                  f"{gpu['switch']['peft']['p50_ms']:.3f}")]
    print_table("bench swap", rows)
    typer.echo(f"wrote {path}")
