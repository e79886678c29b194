"""What the SFT / DPO / reward trainers share: seeding, TRL argument blocks, datasets, metrics, parameter deltas."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainers.config import TrainConfig
from trainers.model_loading import render_prompt


def quiet_hf() -> None:
    """Progress bars and load reports drown the CLI's own output; keep warnings and errors only."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass


def seed_everything(seed: int) -> None:
    """One seed for python, numpy, torch (CPU and CUDA) — init, dropout, data order."""
    from transformers import set_seed

    set_seed(seed)


def common_args(cfg: TrainConfig, work_dir: Path, has_eval: bool) -> dict[str, Any]:
    """TrainingArguments fields every recipe uses (TRL configs subclass TrainingArguments)."""
    import torch

    from trainers.model_loading import pick_dtype

    bf16 = pick_dtype(cfg.bf16) == torch.bfloat16
    args: dict[str, Any] = dict(
        output_dir=str(work_dir), seed=cfg.seed, data_seed=cfg.seed, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2, max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        gradient_checkpointing=cfg.gradient_checkpointing, bf16=bf16, logging_steps=cfg.logging_steps,
        report_to="none", disable_tqdm=True, save_only_model=True, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        # the curriculum is an order; random sampling would undo it
        train_sampling_strategy="sequential" if cfg.data.curriculum else "random",
    )
    if cfg.gradient_checkpointing:
        args["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if has_eval:
        args.update(eval_strategy="steps", eval_steps=cfg.eval_steps, save_strategy="steps", save_steps=cfg.eval_steps,
                    save_total_limit=1, load_best_model_at_end=cfg.early_stopping_patience > 0,
                    metric_for_best_model="eval_loss", greater_is_better=False)
    else:
        args.update(eval_strategy="no", save_strategy="no")
    return args


def callbacks(cfg: TrainConfig, has_eval: bool) -> list[Any]:
    from transformers import EarlyStoppingCallback

    if has_eval and cfg.early_stopping_patience > 0:
        return [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
    return []


def to_hf(rows: list[dict[str, Any]], kind: str) -> Any:
    """rows -> datasets.Dataset in TRL's prompt-completion / preference format, prompts rendered."""
    from datasets import Dataset

    if kind == "sft":
        data = {"prompt": [render_prompt(r["prompt"]) for r in rows],
                "completion": [r["completion"] for r in rows]}
    else:
        data = {"prompt": [render_prompt(r["prompt"]) for r in rows], "chosen": [r["chosen"] for r in rows],
                "rejected": [r["rejected"] for r in rows]}
    return Dataset.from_dict(data)


def silence(trainer: Any) -> Any:
    """Drop the callback that prints every log dict to stdout (the manifest keeps the history)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def trainable_snapshot(model: Any) -> dict[str, Any]:
    return {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}


def max_param_change(before: dict[str, Any], model: Any) -> float:
    """Largest absolute change of any trainable parameter since ``before`` (proof that training moved the adapter)."""
    change = 0.0
    for n, p in model.named_parameters():
        if n in before:
            change = max(change, float((p.detach().float() - before[n]).abs().max()))
    return change


def loss_curve(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    train = [h["loss"] for h in log_history if "loss" in h and "eval_loss" not in h]
    evals = [h["eval_loss"] for h in log_history if "eval_loss" in h]
    out: dict[str, Any] = {"train_loss_first": train[0] if train else None, "train_loss_last": train[-1] if train else None,
                           "train_loss_curve": train, "val_loss_curve": evals}
    steps = [h.get("step", 0) for h in log_history]
    out["steps"] = max(steps) if steps else 0
    return out
