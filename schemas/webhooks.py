"""Webhooks: the YAML config (``configs/webhooks.yaml``) and the dead letter of a delivery that kept failing.

Event types: ``drift.detected`` (drift.events), ``training.completed`` and ``gate.result`` (models.registry),
``rollout.decision`` (audit.log actions ``rollout.*``), ``erasure.completed`` (audit.log actions ``erase*``),
``audit.entry`` (any other audit.log entry).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

WEBHOOK_DLQ_SCHEMA_VERSION = 1
EventType = Literal["drift.detected", "training.completed", "gate.result", "rollout.decision",
                    "erasure.completed", "audit.entry"]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
DEFAULT_SECRET_ENV = "ALIGNLOOP_WEBHOOK_SECRET"


class WebhookTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Names the target in metrics and DLQ.")
    url: HttpUrl
    events: list[EventType] = Field(..., min_length=1, description="Event types this target receives.")
    secret_env: str = Field(DEFAULT_SECRET_ENV, description=(
        "Environment variable holding the Standard Webhooks secret (whsec_<base64>); never in the file."))
    timeout_s: float = Field(5.0, gt=0, le=120, description="One attempt's limit (connect + response).")
    max_attempts: int = Field(5, ge=1, le=50, description="Attempts before the delivery is dead-lettered.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles per attempt.")
    max_backoff_s: float = Field(60.0, ge=0, description="Longest delay between two attempts.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (not secrets).")


class WebhooksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhooks: list[WebhookTarget] = Field(default_factory=list)


class WebhookDeadLetter(BaseModel):
    """A delivery that failed every attempt, on ``webhooks.dlq``: the exact signed payload and where it came from,
    so it can be re-sent as is (receivers dedupe on ``webhook_id``)."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(WEBHOOK_DLQ_SCHEMA_VERSION, ge=1, le=WEBHOOK_DLQ_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    webhook: str
    url: str
    webhook_id: str
    event_type: str
    payload: dict[str, Any]
    attempts: int
    last_error: str
    last_status: int | None = None
    src_topic: str
    src_partition: int
    src_offset: int
    failed_at: datetime
