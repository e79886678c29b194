"""Batch trainers: Delta snapshot -> dataset manifest -> SFT / DPO / reward-model LoRA adapters -> eval gate -> registry.

Nothing here imports torch at module import time except the modules that train or generate
(``sft_trainer``, ``dpo_trainer``, ``reward_trainer``, ``model_loading``, ``eval_gate``), and those import it
inside functions, so ``alignloop`` starts without torch installed.
"""
from trainers.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "load_train_config", "train_step"]


def train_step(config_path: str, **overrides):  # noqa: ANN201 - returns trainers.manifest.AdapterManifest
    """Seed 000's entry point: run one training job described by a YAML recipe; returns the adapter manifest."""
    from trainers.train_step import train_step as _train_step

    return _train_step(config_path, **overrides)
