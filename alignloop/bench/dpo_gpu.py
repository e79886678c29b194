"""`alignloop bench dpo_gpu`: DPO LoRA throughput on a ~1B model in bf16, ours vs a plain TRL script, same run.

Needs a CUDA GPU. Nothing is downloaded: a randomly initialised Llama of ~1B parameters is built from a config
(throughput does not depend on the weights) with a word-level tokenizer, and synthetic preference pairs padded to
a fixed length are used. Both arms use the same model, data, LoRA, batch, sequence length and steps; the
baseline calls ``trl.DPOTrainer`` directly with a hand-written ``DPOConfig``, ours goes through
``trainers.dpo_trainer.train_dpo`` from a ``TrainConfig``. tokens/s = (chosen + rejected tokens) / train seconds.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer

# ~1.1B parameters (TinyLlama-1.1B's shape)
SHAPE = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4)


def _build(root: Path, vocab: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.synthetic import corpus
    from trainers.tiny import build_tokenizer

    tok = build_tokenizer(corpus(), vocab)
    cfg = LlamaConfig(vocab_size=max(len(tok), 32000), max_position_embeddings=4096, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **SHAPE)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    return root / "base"


def _rows(n: int, length: int) -> list[dict]:
    from trainers.synthetic import preference_rows

    words = max(1, length // 2)
    return [{"id": r["pref_id"], "conversation_id": r["conversation_id"], "prompt": r["prompt"],
             "chosen": " ".join((r["chosen"].split() * words)[:words]),
             "rejected": " ".join((r["rejected"].split() * words)[:words]), "ease": r["strength"]}
            for r in preference_rows(n, seed=0)]


def _tokens(tok, rows: list[dict]) -> int:
    from trainers.model_loading import render_prompt

    return sum(len(tok(render_prompt(r["prompt"]) + r[k])["input_ids"]) for r in rows for k in ("chosen", "rejected"))


def run(steps: int, batch: int, length: int, grad_ckpt: bool) -> dict:
    import torch

    if not torch.cuda.is_available():
        from alignloop.cli import UserError

        raise UserError("bench dpo_gpu needs a CUDA GPU; run it on a GPU machine (no figure is guessed on CPU)")
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from trainers.config import TrainConfig
    from trainers.dataset import DatasetBundle
    from trainers.dpo_trainer import train_dpo
    from trainers.hf_common import quiet_hf, to_hf
    from trainers.model_loading import load_base

    quiet_hf()
    rows = _rows(steps * batch, length)
    out: dict = {"gpu": torch.cuda.get_device_name(0), "steps": steps, "batch": batch, "seq_words": length,
                 "gradient_checkpointing": grad_ckpt, "shape": SHAPE}
    with tempfile.TemporaryDirectory(prefix="alignloop-bench-dpo-") as tmp:
        root = Path(tmp)
        base = _build(root, 512)
        model, tok = load_base(str(base), bf16=True)
        out["params"] = sum(p.numel() for p in model.parameters())
        tokens = _tokens(tok, rows)
        out["tokens_per_run"] = tokens
        # baseline: plain TRL script
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        args = DPOConfig(output_dir=str(root / "plain"), per_device_train_batch_size=batch, max_steps=steps,
                         learning_rate=5e-6, bf16=True, gradient_checkpointing=grad_ckpt, logging_steps=steps,
                         save_strategy="no", report_to="none", max_length=4096, seed=42)
        trainer = DPOTrainer(model=model, args=args, train_dataset=to_hf(rows, "dpo"), processing_class=tok,
                             peft_config=lora)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer.train()
        torch.cuda.synchronize()
        out["plain_trl_seconds"] = time.perf_counter() - t0
        out["plain_trl_tokens_per_s"] = tokens / out["plain_trl_seconds"]
        out["plain_trl_peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        del trainer, model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        # ours: the recipe path (same settings, no eval split so neither arm pays for evaluation)
        cfg = TrainConfig(kind="dpo", base_model=str(base), adapter_name="bench", output_root=root / "ours",
                          seed=42, bf16=True, gradient_checkpointing=grad_ckpt, learning_rate=5e-6, max_steps=steps,
                          batch_size=batch, max_length=4096, logging_steps=steps, early_stopping_patience=0)
        bundle = DatasetBundle(kind="dpo", train=rows, val=[], test=[])
        t0 = time.perf_counter()
        train_dpo(cfg, bundle, cfg.output_dir)
        torch.cuda.synchronize()
        out["ours_seconds"] = time.perf_counter() - t0  # includes model load + adapter save: conservative
        out["ours_tokens_per_s"] = tokens / out["ours_seconds"]
        out["ours_peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["ratio_ours_vs_plain"] = out["ours_tokens_per_s"] / out["plain_trl_tokens_per_s"]
    return out


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("dpo_gpu")
    def dpo_gpu(steps: int = typer.Option(30, help="Optimizer steps per arm."),
                batch: int = typer.Option(4, help="Pairs per step."),
                length: int = typer.Option(256, help="Words per response (≈ tokens with the word tokenizer)."),
                grad_ckpt: bool = typer.Option(True, "--grad-ckpt/--no-grad-ckpt")) -> None:
        """DPO LoRA tokens/s on a ~1B bf16 model: trainers.dpo_trainer vs a plain TRL DPOTrainer script."""
        from alignloop.bench._results import print_table, write_result

        figures = run(steps, batch, length, grad_ckpt)
        print_table("DPO LoRA throughput (~1B, bf16)", [
            (k, figures[k]) for k in ("gpu", "params", "plain_trl_tokens_per_s", "ours_tokens_per_s",
                                      "ratio_ours_vs_plain", "plain_trl_peak_mem_gib", "ours_peak_mem_gib")])
        typer.echo(f"wrote {write_result('dpo_gpu', figures)}")
