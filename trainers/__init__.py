"""Batch trainers: Delta snapshot -> dataset manifest -> SFT / DPO / reward-model LoRA adapters -> eval gate -> registry.

Nothing here imports torch at module import time except the modules that train or generate
(``sft_trainer``, ``dpo_trainer``, ``reward_trainer``, ``model_loading``, ``eval_gate``), and those import it
inside functions, so ``alignloop`` starts without torch installed.

``TRAINERS`` lists every trainer kind; ``tests/unit/test_trainer_contract.py`` runs its checks over each entry, so
registering a trainer gets it tested.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from trainers.config import TABLE_FOR_KIND, TrainConfig, load_train_config

__all__ = ["TRAINERS", "TrainConfig", "TrainerKind", "load_train_config", "train_step"]


@dataclass(frozen=True)
class TrainerKind:
    """One kind of trainer: its recipe model, the Delta table it reads, its default recipe and its train function.

    The function, ``fn(config, bundle, out_dir) -> metrics``, is named rather than imported so that importing
    ``trainers`` stays light (its module pulls in the dataset code; torch comes only when it runs).
    """

    kind: str
    config: type[TrainConfig]
    table: str
    recipe: str
    function: str  # "module:function"

    def load(self) -> Callable[..., dict[str, Any]]:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)


TRAINERS: dict[str, TrainerKind] = {
    "sft": TrainerKind("sft", TrainConfig, TABLE_FOR_KIND["sft"], "configs/train/sft.yaml",
                       "trainers.sft_trainer:train_sft"),
    "dpo": TrainerKind("dpo", TrainConfig, TABLE_FOR_KIND["dpo"], "configs/train/dpo.yaml",
                       "trainers.dpo_trainer:train_dpo"),
    "reward": TrainerKind("reward", TrainConfig, TABLE_FOR_KIND["reward"], "configs/train/reward.yaml",
                          "trainers.reward_trainer:train_reward"),
}


def train_step(config_path: str, **overrides):  # noqa: ANN201 - returns trainers.manifest.AdapterManifest
    """Seed 000's entry point: run one training job described by a YAML recipe; returns the adapter manifest."""
    from trainers.train_step import train_step as _train_step

    return _train_step(config_path, **overrides)
