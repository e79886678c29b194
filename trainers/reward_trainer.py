"""Reward / vote-prediction model: TRL ``RewardTrainer`` + LoRA, temperature-calibrated, optionally an ensemble.

P(chosen beats rejected) = sigmoid(mean_members(r(chosen) - r(rejected)) / T), with T fitted on the validation
split. Accuracy, ECE before/after calibration and the reliability curve are measured on the held-out test split.
The members' disagreement (BALD) is what information-gain selection ranks rows by.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trainers.calibration import fit_temperature, reliability, sigmoid
from trainers.config import TrainConfig
from trainers.dataset import DatasetBundle

CALIBRATION_FILE = "calibration.json"


def _text(tok: Any, prompt: str, response: str) -> str:
    from trainers.model_loading import render_prompt

    return render_prompt(prompt) + response + (tok.eos_token or "")


def score_pairs(model: Any, tok: Any, rows: list[dict[str, Any]], batch_size: int = 32) -> np.ndarray:
    """r(chosen) - r(rejected) per row."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    margins: list[float] = []
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            texts = [_text(tok, r["prompt"], r["chosen"]) for r in chunk] + \
                    [_text(tok, r["prompt"], r["rejected"]) for r in chunk]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            scores = model(**enc).logits[:, 0].float().cpu().numpy()
            margins.extend((scores[:len(chunk)] - scores[len(chunk):]).tolist())
    return np.array(margins)


def _train_member(cfg: TrainConfig, bundle: DatasetBundle, seed: int, out_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    from trl import RewardConfig, RewardTrainer

    from trainers import hf_common as hc
    from trainers.model_loading import load_base, lora_config

    hc.seed_everything(seed)
    model, tok = load_base(cfg.base_model, head="score", qlora=cfg.qlora, bf16=cfg.bf16)
    peft_cfg = lora_config(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets, task="SEQ_CLS")
    has_eval = bool(bundle.val)
    with tempfile.TemporaryDirectory(prefix="alignloop-rm-") as work:
        member_cfg = cfg.model_copy(update={"seed": seed})
        args = RewardConfig(**hc.common_args(member_cfg, Path(work), has_eval), max_length=cfg.max_length)
        trainer = RewardTrainer(model=model, args=args, train_dataset=hc.to_hf(bundle.train, "reward"),
                                eval_dataset=hc.to_hf(bundle.val, "reward") if has_eval else None,
                                processing_class=tok, peft_config=peft_cfg, callbacks=hc.callbacks(cfg, has_eval))
        hc.silence(trainer)
        before = hc.trainable_snapshot(trainer.model)
        trainer.train()
        metrics = hc.loss_curve(trainer.state.log_history)
        metrics["max_param_change"] = hc.max_param_change(before, trainer.model)
        trainer.save_model(str(out_dir))
    tok.save_pretrained(out_dir)
    return trainer.model, tok, metrics


def train_reward(cfg: TrainConfig, bundle: DatasetBundle, out_dir: Path) -> dict[str, Any]:
    """Train the member(s), calibrate on validation, measure on test; writes calibration.json beside the adapter."""
    from trainers import hf_common as hc

    hc.quiet_hf()
    if not bundle.test:
        raise ValueError("reward training needs a test split to measure calibration; set data.test_fraction > 0")
    members, val_m, test_m = [], [], []
    n = cfg.reward.ensemble_size
    for i in range(n):
        member_dir = out_dir if n == 1 else out_dir / f"member-{i}"
        model, tok, m = _train_member(cfg, bundle, cfg.seed + i, member_dir)
        members.append({"dir": member_dir.name if n > 1 else ".", "seed": cfg.seed + i, **m})
        if bundle.val:
            val_m.append(score_pairs(model, tok, bundle.val))
        test_m.append(score_pairs(model, tok, bundle.test))
    test_margin = np.mean(test_m, axis=0)
    ones = np.ones(len(test_margin))
    temperature = fit_temperature(np.mean(val_m, axis=0), np.ones(len(val_m[0]))) \
        if cfg.reward.calibrate and val_m else 1.0
    before = reliability(sigmoid(test_margin), ones, cfg.reward.n_bins)
    after = reliability(sigmoid(test_margin / temperature), ones, cfg.reward.n_bins)
    metrics: dict[str, Any] = {
        "accuracy": after.accuracy, "ece_before": before.ece, "ece_after": after.ece, "temperature": temperature,
        "reliability_after": after.bins, "reliability_before": before.bins, "test_pairs": len(test_margin),
        "members": members, "max_param_change": min(m["max_param_change"] for m in members),
        "train_loss_first": members[0]["train_loss_first"], "train_loss_last": members[0]["train_loss_last"],
    }
    if n > 1:
        probs = sigmoid(np.array(test_m) / temperature)
        metrics["test_member_disagreement_mean"] = float(probs.std(axis=0).mean())
    (out_dir / CALIBRATION_FILE).write_text(json.dumps(
        {"temperature": temperature, "members": [m["dir"] for m in members]}, indent=2) + "\n")
    return metrics


def load_ensemble_scorer(adapter_dir: str | Path, base_model: str | None = None):  # noqa: ANN201
    """rows -> [members, rows] calibrated P(chosen beats rejected), for information-gain selection."""
    from peft import PeftModel

    from trainers.manifest import read_manifest
    from trainers.model_loading import load_base

    adapter_dir = Path(adapter_dir)
    calib = json.loads((adapter_dir / CALIBRATION_FILE).read_text())
    base = base_model or read_manifest(adapter_dir).base_model
    loaded = []
    for member in calib["members"]:
        model, tok = load_base(base, head="score")
        loaded.append((PeftModel.from_pretrained(model, str(adapter_dir / member)), tok))

    def scorer(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.array([sigmoid(score_pairs(m, t, rows) / calib["temperature"]) for m, t in loaded])

    return scorer
