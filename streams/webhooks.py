"""Webhook events from pipeline records, and the retry schedule (pure: no I/O, time passed in)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from schemas.topics import AUDIT, DRIFT, REGISTRY

SOURCES = (DRIFT, REGISTRY, AUDIT)


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    timestamp: str


def event_of(topic: str, value: bytes) -> Event | None:
    """The webhook event a record of logical ``topic`` raises (None: none, or not a record of that topic)."""
    try:
        rec = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(rec, dict):
        return None
    if topic == DRIFT:
        return Event("drift.detected", rec, str(rec.get("created_at") or rec.get("detected_at") or ""))
    if topic == REGISTRY:
        rec.pop("manifest", None)  # the manifest is large; receivers fetch it from the registry by adapter_id
        kind = "gate.result" if rec.get("event") == "gated" else "training.completed"
        return Event(kind, rec, str(rec.get("created_at") or ""))
    if topic == AUDIT:
        action = str(rec.get("action") or "")
        kind = ("rollout.decision" if action.startswith("rollout.") else
                "erasure.completed" if action.startswith(("erase", "erasure")) else "audit.entry")
        return Event(kind, rec, str(rec.get("ts") or ""))
    return None


def webhook_id(target: str, topic: str, partition: int, offset: int) -> str:
    """Deterministic per (target, source record): a redelivery after a crash carries the same id, so the receiver
    can drop the duplicate (Standard Webhooks: webhook-id is the idempotency key)."""
    return "msg_" + hashlib.sha256(f"{target}|{topic}|{partition}|{offset}".encode()).hexdigest()[:32]


def payload(event: Event) -> dict[str, Any]:
    """The body Standard Webhooks recommends: type, timestamp, data."""
    return {"type": event.type, "timestamp": event.timestamp, "data": event.data}


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1): base, 2*base, 4*base ... capped."""
    return min(cap_s, base_s * (2 ** (attempt - 1)))
