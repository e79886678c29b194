"""LoRA adapters with random (non-zero) weights on a base model, written like a trained one, with a manifest.

For tests, the swap benchmark and demos: training is not what is measured there, and random B matrices (PEFT
starts B at zero) make two adapters answer visibly differently from the first token.
"""
from __future__ import annotations

from pathlib import Path

from trainers.model_loading import ROLE_MODULES


def make_adapter(base_model: str, out_dir: str | Path, *, seed: int, r: int = 8, alpha: int = 16,
                 targets: tuple[str, ...] = ("attn", "mlp"), name: str = "demo", version: str = "0.0.1",
                 scale: float = 1.0, model: object = None) -> Path:
    """Write a LoRA adapter for ``base_model`` to ``out_dir`` (adapter files + alignloop manifest.json)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from schemas.registry import AdapterManifest
    from trainers.model_loading import load_base, resolve_lora_targets

    base = model if model is not None else load_base(base_model, bf16=False)[0]
    torch.manual_seed(seed)
    wanted = [m for t in targets for m in ROLE_MODULES.get(t, (t,))]
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                     target_modules=resolve_lora_targets(base, list(targets)) if wanted else list(targets),
                     init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.mul_(scale)
    out = Path(out_dir)
    peft_model.save_pretrained(out)
    AdapterManifest(adapter_id=f"{name}@{version}", name=name, version=version, kind="sft", base_model=base_model,
                    path=str(out), lora={"r": r, "alpha": alpha, "dropout": 0.0, "targets": list(targets)},
                    qlora=False, seed=seed, dataset={}, config={}, metrics={}).write(out)
    if model is not None:
        peft_model.unload()  # give the caller's model back without LoRA layers
    return out
