"""Synthetic persona data settings (configs/synth.yaml): seed 003 §6.3's sampling defaults and §6.4's filters.

``endpoint`` is an OpenAI-compatible chat endpoint (the LLM judge's client settings); when it is absent the
offline template generator runs, so the pipeline works end to end with no model at all.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.llm_judge_config import LlmJudgeConfig

DOMAINS = ("general", "reasoning", "social", "safety-edge", "code-lite")
DIFFICULTIES = ("easy", "medium", "hard")


class FilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_words: int = Field(3, ge=1, description="Hard: outputs shorter than this are empty in effect.")
    max_words: int = Field(350, ge=8, description="Hard: the SFT length cap (~350 tokens); longer is truncated.")
    max_instruction_chars: int = Field(1000, ge=16, description="Hard: instructions longer than this are dropped.")
    near_dup_bits: int = Field(3, ge=0, le=16, description="SimHash Hamming distance at or below which rows are dups.")
    style_min: float = Field(0.35, ge=-1, le=1, description="Style: cosine to the persona centroid must reach this.")
    toxicity_max: float = Field(0.2, ge=0, le=1, description="Toxicity proxy above which a row is dropped.")
    banding_rounds: int = Field(4, ge=0, le=20, description="Re-sampling rounds to pull refusals into the band.")
    style: bool = Field(True, description="Run the embedding style filter (loads MiniLM, needs torch).")


class SynthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: LlmJudgeConfig | None = Field(None, description="Chat endpoint; none: the offline template generator.")
    domains: dict[str, float] = Field(
        {"general": 0.60, "reasoning": 0.20, "social": 0.10, "safety-edge": 0.05, "code-lite": 0.05},
        description="Domain mix (seed 003 §6.3).")
    difficulty: dict[str, float] = Field({"easy": 0.33, "medium": 0.33, "hard": 0.34},
                                         description="Difficulty split (seed 003 §6.3).")
    temperature: tuple[float, float] = Field((0.7, 1.0), description="Per-row temperature drawn from this range.")
    top_p: tuple[float, float] = Field((0.8, 0.95), description="Per-row nucleus p drawn from this range.")
    instruction_batch: int = Field(8, ge=1, le=64, description="Instructions asked for per generator request.")
    filters: FilterConfig = Field(default_factory=FilterConfig)

    @model_validator(mode="after")
    def _mixes(self) -> "SynthConfig":
        for name, mix, known in (("domains", self.domains, DOMAINS), ("difficulty", self.difficulty, DIFFICULTIES)):
            if unknown := sorted(set(mix) - set(known)):
                raise ValueError(f"{name}: unknown keys {unknown}; known: {list(known)}")
            if any(v < 0 for v in mix.values()) or abs(sum(mix.values()) - 1) > 1e-6:
                raise ValueError(f"{name}: shares must be >= 0 and sum to 1")
        for name, (lo, hi) in (("temperature", self.temperature), ("top_p", self.top_p)):
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: [low, high] with 0 <= low <= high")
        return self


def load_synth_config(path: str | Path | None) -> SynthConfig:
    """The file's settings, defaults when ``path`` is None; one-line ConfigError naming a bad field."""
    from schemas.settings import read_yaml, validate_config

    if path is None:
        return SynthConfig()
    p = Path(path)
    if not p.is_file():
        from schemas.settings import ConfigError

        raise ConfigError(f"synth config {p} not found; pass --config configs/synth.yaml")
    return validate_config(SynthConfig, read_yaml(p, "synth config", "fix configs/synth.yaml"), p, "synth config",
                           "fix configs/synth.yaml")
