"""Tiny base models and adapters for the serving tests (built locally in seconds, nothing downloaded)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_base(root: Path, **kw: Any) -> str:
    from trainers.synthetic import corpus
    from trainers.tiny import build_tiny_model

    return str(build_tiny_model(root, corpus(), **kw))


def adapter(base: str, out: Path, seed: int, **kw: Any) -> Path:
    from trainers.serving.tiny_adapters import make_adapter

    return make_adapter(base, out, seed=seed, **kw)


def runtime(base: str, **kw: Any) -> Any:
    from prometheus_client import CollectorRegistry

    from trainers.serving.metrics import ServingMetrics
    from trainers.serving.runtime import ServingRuntime

    kw.setdefault("golden_prompts", ("tell me about python", "explain kafka"))
    return ServingRuntime(base, metrics=ServingMetrics(CollectorRegistry()), **kw).load()


def peft_greedy(base: str, adapter_dir: Path, prompt: str, max_new_tokens: int) -> list[int]:
    """Plain PEFT in-process: the reference the server must match token for token."""
    import torch
    from peft import PeftModel

    from trainers.model_loading import load_base, render_prompt

    model, tok = load_base(base, bf16=False)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    ids = tok(render_prompt(prompt), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    return out[0, ids["input_ids"].shape[1]:].tolist()


from alignloop.serve.server import ThreadServer  # noqa: E402,F401 - re-exported for the tests
