"""``train_step(config_path)``: recipe -> dataset snapshot -> trainer -> adapter dir + manifest.json -> registry."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainers.config import TrainConfig, load_train_config
from trainers.dataset import DatasetBundle, build_dataset
from trainers.manifest import AdapterManifest


def build_for(cfg: TrainConfig, settings: Any) -> DatasetBundle:
    scorer = None
    sel = cfg.data.selection
    if sel.budget is not None and sel.strategy == "information_gain" and sel.ensemble_dir is not None:
        from trainers.reward_trainer import load_ensemble_scorer

        scorer = load_ensemble_scorer(sel.ensemble_dir)
    lake = cfg.data.lake_root or settings.lake
    return build_dataset(cfg.kind, cfg.data, lake, cfg.seed, storage_options=settings.lake_storage_options or None,
                         scorer=scorer)


def run_training(cfg: TrainConfig, settings: Any, *, register: bool = True) -> AdapterManifest:
    from trainers.model_loading import require_train_deps

    require_train_deps()
    if cfg.qlora:
        from trainers.model_loading import check_qlora

        check_qlora()  # fail before reading data
    bundle = build_for(cfg, settings)
    if not bundle.train:
        raise ValueError(f"no training rows left in {bundle.manifest['uri']}@{bundle.manifest['delta_version']} "
                         f"after filters {bundle.manifest['filters']}; relax data filters or land more data")
    out_dir = cfg.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle.write(out_dir / "dataset")
    from trainers import TRAINERS

    metrics = TRAINERS[cfg.kind].load()(cfg, bundle, out_dir)
    import torch

    manifest = AdapterManifest(
        adapter_id=f"{cfg.adapter_name}@{cfg.version}", name=cfg.adapter_name, version=cfg.version, kind=cfg.kind,
        base_model=cfg.base_model, path=str(out_dir.resolve()),
        lora={"r": cfg.lora.r, "alpha": cfg.lora.alpha, "dropout": cfg.lora.dropout, "targets": cfg.lora.targets},
        qlora=cfg.qlora, seed=cfg.seed, dataset=bundle.manifest, config=json.loads(cfg.model_dump_json()),
        metrics=metrics, device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    manifest.write(out_dir)
    if register:
        from trainers.registry import register as register_adapter

        manifest.metrics["registry"] = register_adapter(settings, manifest, "trained", publish=cfg.publish)
        manifest.write(out_dir)
        from trainers.lineage import record_dataset

        record_dataset(settings, bundle, manifest.adapter_id)  # which conversations it was trained on (issue 17)
    return manifest


def train_step(config_path: str | Path, *, settings: Any = None, register: bool = True,
               **overrides: Any) -> AdapterManifest:
    """Seed 000's API: one alignment step from a YAML recipe (dotted ``overrides`` such as data.version=3)."""
    from schemas.settings import load_settings

    cfg = load_train_config(config_path, **overrides)
    return run_training(cfg, settings or load_settings(), register=register)
