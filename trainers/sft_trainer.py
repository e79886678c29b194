"""SFT: TRL ``SFTTrainer`` + PEFT LoRA on prompt-completion pairs (loss on the completion only)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from trainers.config import TrainConfig
from trainers.dataset import DatasetBundle


def train_sft(cfg: TrainConfig, bundle: DatasetBundle, out_dir: Path) -> dict[str, Any]:
    """Train, save the adapter to ``out_dir``; returns metrics (loss curve, val/test loss, parameter change)."""
    from trl import SFTConfig, SFTTrainer

    from trainers import hf_common as hc
    from trainers.model_loading import load_base, lora_config

    hc.quiet_hf()
    hc.seed_everything(cfg.seed)
    model, tok = load_base(cfg.base_model, qlora=cfg.qlora, bf16=cfg.bf16)
    peft_cfg = lora_config(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets)
    has_eval = bool(bundle.val)
    with tempfile.TemporaryDirectory(prefix="alignloop-sft-") as work:
        args = SFTConfig(**hc.common_args(cfg, Path(work), has_eval), max_length=cfg.max_length,
                         completion_only_loss=True, shuffle_dataset=False, dataset_num_proc=None)
        trainer = SFTTrainer(model=model, args=args, train_dataset=hc.to_hf(bundle.train, "sft"),
                             eval_dataset=hc.to_hf(bundle.val, "sft") if has_eval else None, processing_class=tok,
                             peft_config=peft_cfg, callbacks=hc.callbacks(cfg, has_eval))
        hc.silence(trainer)
        before = hc.trainable_snapshot(trainer.model)
        trainer.train()
        metrics = hc.loss_curve(trainer.state.log_history)
        metrics["max_param_change"] = hc.max_param_change(before, trainer.model)
        if has_eval:
            metrics["val_loss"] = trainer.evaluate()["eval_loss"]
        if bundle.test:
            metrics["test_loss"] = trainer.evaluate(hc.to_hf(bundle.test, "sft"), metric_key_prefix="test")["test_loss"]
        trainer.save_model(str(out_dir))
    tok.save_pretrained(out_dir)
    return metrics
