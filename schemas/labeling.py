"""The labeling queues' contract (``configs/labeling.yaml``, path ``ALIGNLOOP_LABELING_CONFIG``): which items go
to which queue, what is asked (a score card per dimension or a pairwise preference, rationale, correction), and
the queue semantics (lease, overlap, gold, hidden repeats, adaptive stop, the export gate's alpha)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.settings import ConfigError, load_yaml_config

DEFAULT_LABELING_CONFIG = Path("configs/labeling.yaml")
STRENGTHS = ["slight", "moderate", "clear", "strong"]  # keys 1-4; strength = index+1 / 4 on the Preference


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Score name on the Label, e.g. 'safety'.")
    scale: Literal["likert7", "binary"] = "likert7"
    question: str = Field("", description="Shown to the annotator.")


class QueueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_-]*$")
    kind: Literal["score_card", "pairwise"] = "score_card"
    dimensions: list[Dimension] = Field(default_factory=list, description="Score card questions.")
    reasons: list[str] = Field(default_factory=list, description="Human-queue reasons routed here; empty: any.")
    rationale: Literal["off", "optional", "required"] = "optional"
    correction: bool = Field(True, description="Offer a corrected response (it becomes an SFT example).")
    max_rationale_chars: int = Field(4000, ge=0, le=100_000)
    min_labels: int = Field(2, ge=1, description="Labels before the adaptive stop may close an item.")
    max_labels: int = Field(3, ge=1, le=50, description="Overlap: at most this many annotators per item.")
    stop_confidence: float = Field(0.9, gt=0.5, le=1.0, description="Dawid–Skene posterior that closes an item.")
    lease_s: float = Field(600.0, gt=0, description="An unanswered item returns to the queue after this.")
    gold_rate: float = Field(0.05, ge=0, le=1, description="Share of servings that are gold items.")
    repeat_rate: float = Field(0.05, ge=0, le=1, description="Share of answers served again later (hidden).")
    repeat_gap: int = Field(5, ge=1, description="Answers between an item and its hidden repeat.")
    pass_threshold: float = Field(0.5, ge=0, le=1, description="Mean normalised score at or above which a "
                                                                "score card passes (a failed binary fails it).")

    @model_validator(mode="after")
    def _shape(self) -> "QueueConfig":
        if self.kind == "score_card" and not self.dimensions:
            raise ValueError(f"queue {self.name!r}: a score card needs at least one dimension")
        if self.min_labels > self.max_labels:
            raise ValueError(f"queue {self.name!r}: min_labels must be <= max_labels")
        return self


class LabelingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queues: list[QueueConfig] = Field(..., min_length=1)
    export_min_alpha: float = Field(0.6, ge=-1, le=1, description="Exports of human labels refuse below this.")
    refit_every: int = Field(50, ge=1, description="Refit the Dawid–Skene annotator model every N answers.")

    @model_validator(mode="after")
    def _unique(self) -> "LabelingConfig":
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        return self

    def queue(self, name: str) -> QueueConfig:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    def route(self, reason: str, has_pair: bool) -> QueueConfig:
        """The first queue whose kind fits the item (pairwise needs two responses) and whose reasons match."""
        for q in self.queues:
            if (q.kind == "pairwise") != has_pair:
                continue
            if not q.reasons or reason in q.reasons:
                return q
        return next((q for q in self.queues if q.kind == "score_card"), self.queues[0])


def load_labeling_config(path: Path | None) -> LabelingConfig:
    p = path or DEFAULT_LABELING_CONFIG
    if not p.is_file():
        raise ConfigError(f"labeling config {p} not found; create it or set ALIGNLOOP_LABELING_CONFIG")
    return load_yaml_config(LabelingConfig, p, "labeling config", "see docs/labeling.md")
