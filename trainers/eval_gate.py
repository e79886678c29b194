"""Eval gate runner: generate on a frozen eval set with base and adapter, score with the fast judges, decide.

Depends only on the judges' public API (``streams.judges.build_fast_judges`` / ``aggregate``): each generation
becomes a Trace, the fast judges return Verdicts, and from them come a score (mean of every dimension score of
the ok verdicts), an outcome (``aggregate``), a refusal flag (a refusal judge's ``refusal:*``/``over_refusal``
tags) and a toxicity (1 - the toxicity judge's safety score).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from trainers.gate import GateThresholds, decide

if TYPE_CHECKING:
    from streams.configs import AreaConfigs

Scorer = Callable[[str, str], dict[str, Any]]  # (prompt, response) -> {score, outcome, refused, toxicity}


def judge_scorer(configs: "AreaConfigs") -> Scorer:
    """Scores with the fast judges of ``configs`` (loaded once by the composition root)."""
    from schemas.trace import Trace
    from streams.judges import JudgeContext, aggregate, build_fast_judges

    judges = build_fast_judges(configs.policy, configs.judges)

    def score(prompt: str, response: str) -> dict[str, Any]:
        trace = Trace(trace_id="eval", conversation_id="eval", user_message=prompt, final_response=response,
                      policy_id="eval")
        verdicts = [j.judge(trace, JudgeContext()) for j in judges]
        ok = [v for v in verdicts if v.status == "ok"]
        dims = [s for v in ok for s in v.scores.values()]
        tags = {t for v in ok for t in v.tags}
        tox = [1.0 - v.scores["safety"] for v in ok if v.judge == "toxicity" and "safety" in v.scores]
        return {"score": sum(dims) / len(dims) if dims else 0.0, "outcome": aggregate(verdicts),
                "refused": any(t.startswith("refusal:") or t == "over_refusal" for t in tags),
                "toxicity": max(tox) if tox else 0.0}

    return score


def llm_scorer(base: Scorer, client: Any) -> Scorer:
    """The fast-judge scorer plus the high-fidelity LLM judge (``connectors.llm_judge.LlmJudgeClient``): the score
    is the mean of the fast-judge and LLM scores, an LLM "not passed" makes the outcome at least ``flag``. When the
    endpoint fails or cannot judge an item, that item keeps its fast-judge score and ``llm_error`` says why, so a
    flaky endpoint degrades the gate to the fast judges instead of failing it."""
    import asyncio

    from connectors.llm_judge import LlmJudgeError, Unjudgeable
    from schemas.trace import Trace

    loop = asyncio.new_event_loop()

    def score(prompt: str, response: str) -> dict[str, Any]:
        out = dict(base(prompt, response))
        trace = Trace(trace_id="eval", conversation_id="eval", user_message=prompt, final_response=response,
                      policy_id="eval")
        try:
            j = loop.run_until_complete(client.judge_trace(trace))
        except (LlmJudgeError, Unjudgeable) as exc:
            out["llm_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            return out
        llm = sum(j.scores.values()) / len(j.scores) if j.scores else 0.0
        out.update(llm_score=llm, llm_passed=j.passed, score=(out["score"] + llm) / 2)
        if not j.passed and out["outcome"] == "pass":
            out["outcome"] = "flag"
        return out

    return score


def generate(model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy decoding (deterministic), left-padded batches; returns only the new text."""
    import torch

    from trainers.model_loading import render_prompt

    tok.padding_side = "left"
    device = next(model.parameters()).device
    out: list[str] = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            texts = [render_prompt(p) for p in prompts[i:i + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            out.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
    return out


def run_eval(adapter_dir: str | Path, evalset: list[dict[str, Any]], th: GateThresholds, scorer: Scorer,
             base_model: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(gate result, per-prompt samples). The base is the same weights with the adapter disabled."""
    from peft import PeftModel

    from trainers.hf_common import quiet_hf, seed_everything
    from trainers.manifest import read_manifest
    from trainers.model_loading import load_base

    quiet_hf()
    manifest = read_manifest(adapter_dir)
    if manifest.kind == "reward":
        raise ValueError(f"{adapter_dir} is a reward model; the eval gate generates, so pass an sft or dpo adapter")
    seed_everything(manifest.seed)
    model, tok = load_base(base_model or manifest.base_model)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    prompts = [e["prompt"] for e in evalset]
    adapter_text = generate(model, tok, prompts, th.max_new_tokens, th.batch_size)
    with model.disable_adapter():
        base_text = generate(model, tok, prompts, th.max_new_tokens, th.batch_size)
    base = [scorer(p, r) for p, r in zip(prompts, base_text)]
    adapted = [scorer(p, r) for p, r in zip(prompts, adapter_text)]
    result = decide(evalset, base, adapted, th)
    samples = [{"id": e["id"], "tags": e["tags"], "prompt": e["prompt"], "base": bt, "adapter": at,
                "base_judged": b, "adapter_judged": a}
               for e, bt, at, b, a in zip(evalset, base_text, adapter_text, base, adapted)]
    return result, samples


def write_report(path: Path, adapter_dir: str | Path, evalset_path: str | Path, result: dict[str, Any],
                 samples: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"adapter": str(adapter_dir), "evalset": str(evalset_path), "gate": result,
                                "samples": samples}, indent=2, default=str) + "\n")
    return path
