"""Drift / calibration / retraining-trigger settings, loaded from ``configs/drift.yaml``.

The path comes from ``ALIGNLOOP_DRIFT_CONFIG`` (default ``configs/drift.yaml``); a missing file means defaults.
Every field has a reason in its description; bad values fail at load with one line naming the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.settings import ConfigError, load_yaml_config

DEFAULT_PATH = "configs/drift.yaml"
DRIFT_CONFIG_ENV = "ALIGNLOOP_DRIFT_CONFIG"  # Settings.drift_config, named in messages
DetectorKind = Literal["page_hinkley", "adwin", "kswin", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm"]


class MonitorConfig(BaseModel):
    """How one (policy_id, signal) monitor turns per-trace values into detector input."""

    model_config = ConfigDict(extra="forbid")
    detector: DetectorKind = Field("page_hinkley", description="river detector fed with standardised block means.")
    params: dict[str, Any] = Field(default_factory=lambda: {"delta": 0.5, "threshold": 10.0, "min_instances": 1,
                                                            "alpha": 1.0},
                                   description="Constructor arguments of the river detector.")
    block: int = Field(250, ge=1, description="Traces averaged into one detector input (0.5 s at 500 traces/s): "
                                             "block means are near-normal, so one threshold fits every signal.")
    warmup_blocks: int = Field(40, ge=4, description="Blocks that estimate the reference mean/std before any "
                                                     "alarm can fire (also after every drift and on a fresh start).")
    min_std: float = Field(1e-3, gt=0, description="Floor on the block-mean std, so a constant signal that "
                                                    "moves a little is not infinitely significant.")
    examples: int = Field(5, ge=0, le=50, description="Example trace ids kept per drift event.")


class EmbeddingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    dim: int = Field(256, ge=16, le=4096, description="Hashed feature dimensions per text.")
    fields: list[Literal["prompt", "response"]] = Field(default_factory=lambda: ["prompt", "response"])


class SignalsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    judge_scores: bool = Field(True, description="One signal per (judge, score dimension).")
    escalation_confidence_below: float = Field(0.6, ge=0, le=1, description="A trace counts as escalated when "
                                                                             "any verdict's confidence is lower, "
                                                                             "or its outcome is not 'pass'.")
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)


class TriggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drift_events: int = Field(2, ge=1, description="Drift events for one policy within window_s that ask for "
                                                    "retraining.")
    window_s: float = Field(3600.0, gt=0)
    labels: int = Field(5000, ge=1, description="New labels for one policy since its last request that ask for "
                                                "retraining.")
    cooldown_s: float = Field(6 * 3600.0, ge=0, description="Least time between two requests for one policy.")
    # What a request asks the trainer runner to do: without a kind the runner refuses it (it cannot pick a trainer).
    kind: Literal["sft", "dpo", "reward"] = Field("sft", description="Trainer the request runs.")
    config: str | None = Field(None, description="Training recipe; default configs/train/<kind>.yaml.")
    evalset: str | None = Field("configs/eval/golden_v0.jsonl", description="Gate the new adapter on this eval set.")
    gate: str | None = Field("configs/eval/gate.yaml", description="Gate thresholds for the eval.")


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: int = Field(2000, ge=10, description="Most recent labels per (judge, policy) in ECE/Brier/bins.")
    bins: int = Field(10, ge=2, le=50)
    store_size: int = Field(200_000, ge=100, description="Recent trace_id -> confidences kept for the label "
                                                         "join (LRU); older labels count as unmatched.")
    snapshot_every: int = Field(200, ge=1, description="Labels between two rows in the `calibration` table.")
    clusters: int = Field(5, ge=1, le=50, description="Error clusters of mis-judged traces per snapshot.")
    misjudged_buffer: int = Field(2000, ge=10, description="Recent mis-judged traces kept for clustering.")


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    overrides: dict[str, MonitorConfig] = Field(default_factory=dict, description="Per-signal monitor settings "
                                                                                  "(key: signal name).")
    signals: SignalsConfig = Field(default_factory=SignalsConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    state_path: str = Field("", description="Detector state file; default <home>/worker/drift-state-<app_id>-<host>.json.")
    checkpoint_interval_s: float = Field(10.0, gt=0, description="Seconds between two state-file writes.")

    def monitor_for(self, signal: str) -> MonitorConfig:
        if signal in self.overrides:
            return self.overrides[signal]
        prefix = signal.split(":", 1)[0]
        return self.overrides.get(prefix, self.monitor)


def load_drift_config(path: str | Path | None = None) -> DriftConfig:
    """The drift config at ``path`` (``Settings.drift_config``); None: configs/drift.yaml, or the defaults when
    that file is absent. A missing named file or a bad field is a one-line ConfigError naming the fix."""
    p = Path(path) if path is not None else Path(DEFAULT_PATH)
    if not p.is_file():
        if path is not None:
            raise ConfigError(f"drift config {p} not found; fix {DRIFT_CONFIG_ENV} or create the file")
        return DriftConfig()
    return load_yaml_config(DriftConfig, p, "drift config", f"fix the file or {DRIFT_CONFIG_ENV}")
