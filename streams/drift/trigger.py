"""Retraining trigger: ask for a new adapter when a policy drifts repeatedly or enough new labels arrived."""
from __future__ import annotations

import uuid
from collections import deque
from datetime import datetime, timezone

from streams.drift.config import TriggerConfig
from streams.drift.events import DriftEvent, TrainRequest
from schemas.drift_state import TriggerEvents, TriggerState


class RetrainTrigger:
    """Pure: feed drift events and label counts, get ``TrainRequest``s. Clock is passed in (testable)."""

    def __init__(self, cfg: TriggerConfig):
        self.cfg = cfg
        self._events: dict[str, deque[tuple[float, DriftEvent]]] = {}
        self._labels: dict[str, int] = {}
        self._last_request: dict[str, float] = {}

    def _cooling(self, policy_id: str, now: float) -> bool:
        last = self._last_request.get(policy_id)
        return last is not None and now - last < self.cfg.cooldown_s

    def _request(self, policy_id: str, reason: str, now: float, events: list[DriftEvent]) -> TrainRequest:
        self._last_request[policy_id] = now
        cfg = self.cfg
        req = TrainRequest(request_id=str(uuid.uuid4()), policy_id=policy_id, reason=reason, kind=cfg.kind,
                           config=cfg.config, evalset=cfg.evalset, gate=cfg.gate,
                           drift_signals=sorted({e.signal for e in events}),
                           drift_event_ids=[e.event_id for e in events],
                           labels_since_last=self._labels.get(policy_id, 0),
                           created_at=datetime.fromtimestamp(now, timezone.utc))
        self._labels[policy_id] = 0
        self._events.pop(policy_id, None)
        return req

    def on_drift(self, event: DriftEvent, now: float) -> TrainRequest | None:
        q = self._events.setdefault(event.policy_id, deque())
        q.append((now, event))
        while q and now - q[0][0] > self.cfg.window_s:
            q.popleft()
        if len(q) >= self.cfg.drift_events and not self._cooling(event.policy_id, now):
            return self._request(event.policy_id, "drift", now, [e for _, e in q])
        return None

    def on_labels(self, policy_id: str, n: int, now: float) -> TrainRequest | None:
        self._labels[policy_id] = self._labels.get(policy_id, 0) + n
        if self._labels[policy_id] >= self.cfg.labels and not self._cooling(policy_id, now):
            return self._request(policy_id, "labels", now, [])
        return None

    # --- persistence (snapshot.py) ---
    def state(self) -> TriggerState:
        return TriggerState(
            events=[TriggerEvents(policy_id=p, events=[(t, e.model_dump(mode="json")) for t, e in q])
                    for p, q in self._events.items()],
            labels=dict(self._labels), last_request=dict(self._last_request))

    @classmethod
    def from_state(cls, s: TriggerState, cfg: TriggerConfig) -> "RetrainTrigger":
        t = cls(cfg)
        for pe in s.events:
            t._events[pe.policy_id] = deque((ts, DriftEvent.model_validate(e)) for ts, e in pe.events)
        t._labels, t._last_request = dict(s.labels), dict(s.last_request)
        return t
