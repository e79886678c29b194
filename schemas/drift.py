"""Drift events (``drift.events``), retraining requests (``train.requests``) and monitor snapshots (``drift.state``).

A monitor raises a ``DriftEvent`` when its detector fires; the worker that ran it stamps its name on it
(``for_worker``), which also fixes the event id, so the same alarm replayed has the same id.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DRIFT_EVENT_SCHEMA_VERSION = 1
TRAIN_REQUEST_SCHEMA_VERSION = 1


def drift_event_id(policy_id: str, signal: str, detected_at: datetime, worker: str) -> str:
    key = f"{policy_id}|{signal}|{detected_at.isoformat()}|{worker}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class DriftEvent(BaseModel):
    """What a monitor saw when its detector fired, as published to ``drift.events``."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(DRIFT_EVENT_SCHEMA_VERSION, ge=1, le=DRIFT_EVENT_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    event_id: str = Field(..., description="Deterministic (policy, signal, detection time, worker): the same alarm "
                                           "replayed has the same id. Derived when not given.")
    policy_id: str
    signal: str = Field(..., description="e.g. tool_error, refusal, score:quality.helpfulness, embedding:prompt")
    detector: str
    since: datetime = Field(..., description="Estimated onset: first trace time of the changed run of blocks.")
    detected_at: datetime = Field(..., description="Trace time of the block that raised the alarm.")
    ref_mean: float
    ref_std: float = Field(0.0, ge=0, description="Reference standard deviation of a block mean.")
    current_mean: float
    magnitude: float = Field(..., description="current_mean - ref_mean, in the signal's unit. Derived when not given.")
    z: float = Field(..., description="Magnitude in reference standard deviations of a block mean.")
    n_blocks_since: int = Field(0, ge=0, description="Blocks since the estimated onset.")
    example_trace_ids: list[str] = Field(default_factory=list)
    worker: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("event_id" in data and "magnitude" in data):
            return data
        data = dict(data)
        if "magnitude" not in data and "current_mean" in data and "ref_mean" in data:
            data["magnitude"] = data["current_mean"] - data["ref_mean"]
        if "event_id" not in data and {"policy_id", "signal", "detected_at"} <= data.keys():
            at = data["detected_at"]
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            data["event_id"] = drift_event_id(data["policy_id"], data["signal"], at, data.get("worker", ""))
        return data

    def for_worker(self, worker: str) -> "DriftEvent":
        """This event as raised by ``worker`` (its id names the worker)."""
        return self.model_copy(update={
            "worker": worker, "event_id": drift_event_id(self.policy_id, self.signal, self.detected_at, worker)})

    def to_row(self) -> dict[str, Any]:
        """A row of the Delta table ``drift_events``."""
        return {"event_id": self.event_id, "policy_id": self.policy_id, "signal": self.signal,
                "detector": self.detector, "since": self.since, "detected_at": self.detected_at,
                "ref_mean": self.ref_mean, "current_mean": self.current_mean, "magnitude": self.magnitude,
                "z": self.z, "example_trace_ids": self.example_trace_ids, "worker": self.worker,
                "date": self.detected_at.date().isoformat(), "created_at": self.created_at}


class TrainRequest(BaseModel):
    """A record on ``train.requests``: from the drift trigger (policy, reason, signals) or a person (kind, config).

    The trainer runner runs requests that name a ``kind``; ``config`` defaults to configs/train/<kind>.yaml.
    """

    # producers (drift monitors, people, scripts) may add context fields: ignored, not rejected
    model_config = ConfigDict(extra="ignore")
    schema_version: int = Field(TRAIN_REQUEST_SCHEMA_VERSION, ge=1, le=TRAIN_REQUEST_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    kind: Literal["sft", "dpo", "reward"] | None = Field(None, description="Trainer to run; the runner needs it.")
    config: str | None = Field(None, description="Training recipe; default configs/train/<kind>.yaml.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Recipe overrides, e.g. {'data.version': 7}.")
    evalset: str | None = Field(None, description="Gate the new adapter on this eval set right after training.")
    gate: str | None = None
    reason: str = Field("", description="e.g. 'drift' or 'labels' (the drift trigger), free text otherwise.")
    policy_id: str = "base"
    drift_signals: list[str] = Field(default_factory=list)
    drift_event_ids: list[str] = Field(default_factory=list)
    labels_since_last: int = 0
    replay: str | None = Field(None, description="Train on this replay's curated tables (alignloop replay curate) "
                                                 "instead of the live ones; the dataset builder pins their version.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def config_path(self) -> str:
        return self.config or f"configs/train/{self.kind}.yaml"

    def dedup_key(self) -> str:
        key = [self.kind, self.config_path(), self.overrides, self.evalset]
        return json.dumps(key + ([self.replay] if self.replay is not None else []), sort_keys=True)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":")).encode()

