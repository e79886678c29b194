"""Training recipes: one YAML file (configs/train/<recipe>.yaml) -> ``TrainConfig``. Every field has help text."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.settings import read_yaml

Kind = Literal["sft", "dpo", "reward"]
TABLE_FOR_KIND = {"sft": "sft_examples", "dpo": "preferences", "reward": "preferences"}


class LoraSettings(BaseModel):
    """Seed 003's LoRA defaults: r 16, alpha 32, dropout 0.05, attention + MLP projections."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    targets: list[str] = Field(["attn", "mlp"], min_length=1,
                               description="'attn', 'mlp' (mapped to the model's module names) or literal names.")


class SelectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget: int | None = Field(None, ge=1, description="Keep at most this many training rows (val/test untouched).")
    strategy: Literal["information_gain", "random"] = Field(
        "information_gain", description="information_gain: ensemble disagreement (BALD) or label entropy.")
    ensemble_dir: Path | None = Field(None, description="A reward-ensemble adapter dir whose disagreement scores rows.")


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lake_root: str | None = Field(None, description="Lake root (local path or URI); default: settings.lake.")
    table: str | None = Field(None, description="Source table; default sft_examples for sft, preferences otherwise.")
    version: int | None = Field(None, ge=0, description="Delta version to read; default latest (pinned in manifest).")
    labels_version: int | None = Field(None, ge=0, description="Version of `labels` to join; default latest.")
    use_labels: bool = Field(True, description="Drop rows whose trace has a failing human/LLM label.")
    min_score: float | None = Field(None, ge=0, le=1, description="SFT: keep rows with judge score >= this.")
    min_confidence: float | None = Field(None, ge=0, le=1, description="SFT: keep rows with judge confidence >= this.")
    min_strength: float | None = Field(None, ge=0, le=1, description="Preferences: keep rows with strength >= this.")
    sources: list[str] | None = Field(None, description="Preferences: keep only these sources (human, llm_judge...).")
    dedup: bool = Field(True, description="Drop exact and near duplicates (SimHash).")
    near_dup_bits: int = Field(6, ge=0, le=16, description="SimHash Hamming distance at or below which rows are dups.")
    val_fraction: float = Field(0.1, ge=0, lt=0.5, description="Share of conversations in validation.")
    test_fraction: float = Field(0.1, ge=0, lt=0.5, description="Share of conversations in test.")
    curriculum: bool = Field(False, description="Order training rows easy -> hard by judge confidence / strength.")
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    max_rows: int | None = Field(None, ge=1, description="Cap on rows read (newest dropped first), for smoke runs.")
    replay: str | None = Field(None, description="Read the table from this replay's namespace "
                                                 "(<lake>/replay/<name>/, landed by `alignloop replay curate`).")


class DPOSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    beta: float = Field(0.1, gt=0, description="KL strength of DPO.")
    loss_type: str = Field("sigmoid", description="TRL DPO loss type.")


class RewardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ensemble_size: int = Field(1, ge=1, le=8, description="Members trained with seeds seed, seed+1, ...")
    calibrate: bool = Field(True, description="Fit a temperature on validation so confidences are calibrated.")
    n_bins: int = Field(10, ge=2, le=50, description="Bins of the ECE / reliability curve.")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind = Field(..., description="sft | dpo | reward.")
    base_model: str = Field(..., description="Local directory or hub id (hub needs network at train time).")
    adapter_name: str = Field(..., pattern=r"^[A-Za-z0-9._-]+$", description="Registry name of the adapter.")
    version: str = Field("0.1.0", description="Adapter version; the output lands in <output_root>/<name>/<version>.")
    output_root: Path = Field(Path("adapters"), description="Where adapter directories go.")
    seed: int = Field(42, description="One seed: splits, selection, init, data order, dropout.")
    data: DataSettings = Field(default_factory=DataSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    qlora: bool = Field(False, description="4-bit NF4 base via bitsandbytes (CUDA only).")
    bf16: bool | Literal["auto"] = Field("auto", description="bf16 when the device supports it.")
    gradient_checkpointing: bool = Field(True, description="Trade compute for memory.")
    learning_rate: float = Field(1.5e-4, gt=0)
    lr_scheduler: str = Field("cosine")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.1, ge=0)
    adam_beta1: float = Field(0.9, gt=0, lt=1)
    adam_beta2: float = Field(0.95, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="Overrides epochs when > 0.")
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=8, description="Max tokens per example (prompt + response).")
    eval_steps: int = Field(50, ge=1, description="Validate every N steps (early stopping checks then).")
    early_stopping_patience: int = Field(3, ge=0, description="Evaluations without val-loss gain before stop; 0 off.")
    logging_steps: int = Field(10, ge=1)
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    reward: RewardSettings = Field(default_factory=RewardSettings)
    publish: bool = Field(False, description="Publish the registry event to Kafka (else Delta row only).")

    @model_validator(mode="after")
    def _table(self) -> "TrainConfig":
        if self.data.table is None:
            self.data.table = TABLE_FOR_KIND[self.kind]
        if self.qlora and self.lora.r > 256:
            raise ValueError("lora.r > 256 with qlora is almost certainly a typo")
        return self

    @property
    def output_dir(self) -> Path:
        return self.output_root / self.adapter_name / self.version


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a recipe; ``overrides`` use dotted keys (``data.version=3``). Bad files raise UserError-ready ValueError."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"training config {p} not found; pass --config configs/train/<recipe>.yaml")
    raw = read_yaml(p, "training config", "fix the recipe")
    for key, value in overrides.items():
        if value is None:
            continue
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    try:
        return TrainConfig(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "recipe"
        raise ValueError(f"{p}: bad field {where!r}: {err['msg']}") from None
