"""DPO: TRL ``DPOTrainer`` + PEFT LoRA on (prompt, chosen, rejected); the reference is the base with the adapter off."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from trainers.config import TrainConfig
from trainers.dataset import DatasetBundle


def _reward_metrics(trainer: Any, dataset: Any, prefix: str) -> dict[str, float]:
    out = trainer.evaluate(dataset, metric_key_prefix=prefix)
    keep = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")
    found = {}
    for k in keep:  # TRL logs its own metrics under "eval_" whatever the prefix
        for key in (f"{prefix}_{k}", f"eval_{k}"):
            if key in out:
                found[f"{prefix}_{k.replace('rewards/', 'reward_')}"] = out[key]
                break
    return found


def train_dpo(cfg: TrainConfig, bundle: DatasetBundle, out_dir: Path) -> dict[str, Any]:
    """Train, save the adapter; metrics include reward accuracy on validation/test before and after training."""
    from trl import DPOConfig, DPOTrainer

    from trainers import hf_common as hc
    from trainers.model_loading import load_base, lora_config

    hc.quiet_hf()
    hc.seed_everything(cfg.seed)
    model, tok = load_base(cfg.base_model, qlora=cfg.qlora, bf16=cfg.bf16)
    peft_cfg = lora_config(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets)
    has_eval = bool(bundle.val)
    with tempfile.TemporaryDirectory(prefix="alignloop-dpo-") as work:
        args = DPOConfig(**hc.common_args(cfg, Path(work), has_eval), max_length=cfg.max_length, beta=cfg.dpo.beta,
                         loss_type=[cfg.dpo.loss_type])
        trainer = DPOTrainer(model=model, args=args, train_dataset=hc.to_hf(bundle.train, "dpo"),
                             eval_dataset=hc.to_hf(bundle.val, "dpo") if has_eval else None, processing_class=tok,
                             peft_config=peft_cfg, callbacks=hc.callbacks(cfg, has_eval))
        held_out = hc.to_hf(bundle.test or bundle.val, "dpo") if (bundle.test or bundle.val) else None
        metrics: dict[str, Any] = {}
        if held_out is not None:
            metrics.update({f"{k}_before": v for k, v in _reward_metrics(trainer, held_out, "heldout").items()})
        hc.silence(trainer)
        before = hc.trainable_snapshot(trainer.model)
        trainer.train()
        metrics.update(hc.loss_curve(trainer.state.log_history))
        metrics["max_param_change"] = hc.max_param_change(before, trainer.model)
        if has_eval:
            metrics.update(_reward_metrics(trainer, hc.to_hf(bundle.val, "dpo"), "val"))
        if held_out is not None:
            metrics.update(_reward_metrics(trainer, held_out, "heldout"))
        trainer.save_model(str(out_dir))
    tok.save_pretrained(out_dir)
    return metrics
