"""Drift events (``drift.events``) and retraining requests (``train.requests``): models and Delta rows."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streams.drift.monitor import DriftAlarm

DRIFT_EVENT_SCHEMA_VERSION = 1
TRAIN_REQUEST_SCHEMA_VERSION = 1


class DriftEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = DRIFT_EVENT_SCHEMA_VERSION
    event_id: str = Field(..., description="Deterministic: the same alarm replayed has the same id.")
    policy_id: str
    signal: str = Field(..., description="e.g. tool_error, refusal, score:quality.helpfulness, embedding:prompt")
    detector: str
    since: datetime = Field(..., description="Estimated onset: first trace time of the changed run of blocks.")
    detected_at: datetime = Field(..., description="Trace time of the block that raised the alarm.")
    ref_mean: float
    current_mean: float
    magnitude: float = Field(..., description="current_mean - ref_mean, in the signal's unit.")
    z: float = Field(..., description="Magnitude in reference standard deviations of a block mean.")
    example_trace_ids: list[str] = Field(default_factory=list)
    worker: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @classmethod
    def from_alarm(cls, a: DriftAlarm, worker: str = "") -> "DriftEvent":
        key = f"{a.policy_id}|{a.signal}|{a.detected_at.isoformat()}|{worker}"
        return cls(event_id=hashlib.sha256(key.encode()).hexdigest()[:24], policy_id=a.policy_id, signal=a.signal,
                   detector=a.detector, since=a.since, detected_at=a.detected_at, ref_mean=a.ref_mean,
                   current_mean=a.current_mean, magnitude=a.magnitude, z=a.z,
                   example_trace_ids=a.example_trace_ids, worker=worker)

    def to_row(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "policy_id": self.policy_id, "signal": self.signal,
                "detector": self.detector, "since": self.since, "detected_at": self.detected_at,
                "ref_mean": self.ref_mean, "current_mean": self.current_mean, "magnitude": self.magnitude,
                "z": self.z, "example_trace_ids": self.example_trace_ids, "worker": self.worker,
                "date": self.detected_at.date().isoformat(), "created_at": self.created_at}


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = TRAIN_REQUEST_SCHEMA_VERSION
    request_id: str
    policy_id: str
    reason: str = Field(..., description="'drift' or 'labels'")
    drift_signals: list[str] = Field(default_factory=list)
    drift_event_ids: list[str] = Field(default_factory=list)
    labels_since_last: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":")).encode()
