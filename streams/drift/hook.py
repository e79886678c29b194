"""The worker adapter: a ``TraceHandler`` hook for drift and a label handler for calibration.

Per batch of judged traces: remember confidences, update monitors, publish drift events (and retraining
requests) and land them in Delta. Per batch of labels: join, update calibration metrics, snapshot to Delta.
State (monitors, confidence store, trigger) is checkpointed to a local file every few seconds and at shutdown.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from pydantic import ValidationError

from schemas.preference import Label
from schemas.verdict import JudgedTrace
from streams.drift.bank import MonitorBank
from streams.drift.config import DriftConfig
from streams.drift.events import DriftEvent, TrainRequest
from streams.drift.metrics import DriftMetrics
from schemas.drift_state import SCHEMA_VERSION, DriftSnapshot, LabelOffset, OtherConfig
from streams.drift.state import Candidate, KafkaStateStore, StateFile
from streams.drift.tracker import CalibrationTracker
from streams.drift.trigger import RetrainTrigger
from streams.feedback import parse

log = logging.getLogger("alignloop.drift")
MAX_POLICY_ID = 256  # schemas.trace.Trace's limit: a longer one names no policy (and would not fit a snapshot)
Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


class DriftHook:
    def __init__(self, cfg: DriftConfig, *, send: Send, metrics: DriftMetrics, drift_topic: str,
                 train_topic: str, labels_topic: str = "feedback.labels", events_sink: Any = None, calibration_sink: Any = None,
                 state: StateFile | KafkaStateStore | None = None, worker: str = "", clock: Callable[[], float] = time.time,
                 dead_letters: Any = None, trace_key: Callable[[str], str] | None = None):
        self.cfg, self.send, self.metrics = cfg, send, metrics
        self.drift_topic, self.train_topic, self.labels_topic = drift_topic, train_topic, labels_topic
        self.events_sink, self.calibration_sink = events_sink, calibration_sink
        self.state, self.worker, self.clock = state, worker, clock
        self.dead_letters = dead_letters  # streams.feedback.FeedbackDeadLetters: bad labels go to feedback.dlq
        self.bank = MonitorBank(cfg)
        self.tracker = CalibrationTracker(cfg.calibration)
        self.trigger = RetrainTrigger(cfg.trigger)
        self.label_offsets: dict[int, int] = {}
        self.erase_offsets: dict[int, int] = {}  # drift.erase positions applied
        self.trace_key = trace_key  # ErasureKeys.trace: how erasure commands name traces
        self._last_save = clock()
        self._save_lock = asyncio.Lock()
        self.restore()

    # --- persistence: JSON validated by snapshot.DriftSnapshot (never pickle: the topic is writable) ---
    def dumps(self) -> bytes:
        return DriftSnapshot(
            schema_version=SCHEMA_VERSION, bank=self.bank.state(), tracker=self.tracker.state(),
            trigger=self.trigger.state(),
            label_offsets=[LabelOffset(partition=p, offset=o) for p, o in self.label_offsets.items()],
            erase_offsets=[LabelOffset(partition=p, offset=o) for p, o in self.erase_offsets.items()],
        ).model_dump_json().encode()

    def _load(self, body: bytes) -> None:
        s = DriftSnapshot.model_validate_json(body)
        bank = MonitorBank.from_state(s.bank, self.cfg)
        tracker = CalibrationTracker.from_state(s.tracker, self.cfg.calibration)
        trigger = RetrainTrigger.from_state(s.trigger, self.cfg.trigger)
        self.bank, self.tracker, self.trigger = bank, tracker, trigger
        self.label_offsets = {lo.partition: lo.offset for lo in s.label_offsets}
        self.erase_offsets = {lo.partition: lo.offset for lo in s.erase_offsets}

    def restore(self) -> str:
        """Restore the newest usable snapshot; returns 'restored', 'fresh' (none stored) or 'discarded' (none
        usable). Every refused snapshot is logged and counted by reason; none of them can stop the worker."""
        candidates = self.state.candidates() if self.state else []
        result = "fresh" if not candidates else "discarded"
        for c in candidates:
            reason = c.error or self._try(c)
            if not reason:
                self.state.chose(c)  # type: ignore[union-attr]
                result = "restored"
                break
            self.metrics.state_invalid.labels(reason).inc()
        if result == "discarded":
            log.warning("no usable drift state in %s; monitors warm up again", self.state.path)  # type: ignore
        self.metrics.state_restores.labels(result).inc()
        return result

    def _try(self, c: Candidate) -> str:
        """'' when ``c`` restored, else the reason it was refused."""
        try:
            self._load(c.body or b"")
            return ""
        except ValidationError as exc:
            errors = exc.errors()
            if any(e["type"] == "json_invalid" for e in errors):
                reason = "invalid_json"
            elif any(e["loc"][:1] == ("schema_version",) for e in errors):
                reason = "unsupported_schema_version"
            else:
                reason = "validation_error"
            detail = str(errors[0].get("msg", ""))[:200]
        except OtherConfig as exc:
            reason, detail = "other_config", str(exc)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            reason, detail = "validation_error", str(exc)[:200]
        log.warning("drift state from %s refused (%s: %s)", c.origin, reason, detail)
        return reason

    async def save(self) -> None:
        if self.state is None:
            return
        async with self._save_lock:  # one save at a time, in order: a snapshot taken before an erasure never lands last
            try:
                blob = self.dumps()
            except ValueError as exc:  # a value no snapshot may hold: keep running on the last good one
                log.error("drift state not saved: %s", str(exc)[:300])
                return
            await asyncio.to_thread(self.state.save, blob)
        self._last_save = self.clock()
        self.metrics.state_saves.inc()

    # --- erasure (streams.drift.erase) ---
    async def on_erase(self, records: list[tuple[Any, ...]]) -> list[Any]:
        """records: (partition, offset, value[, key]) from drift.erase. Drops every entry of the named traces
        from the state and saves at once, so the next snapshot on drift.state and in the file holds none."""
        from schemas.drift_state import DriftErase
        from streams.drift.erase import scrub_snapshot

        removed, applied = 0, False
        for partition, offset, value, *_ in records:
            if offset <= self.erase_offsets.get(partition, -1):
                continue
            self.erase_offsets[partition] = offset
            applied = True
            try:
                cmd = DriftErase.model_validate_json(value)
            except ValidationError as exc:
                log.warning("erasure command at drift.erase %d@%d refused: %s", partition, offset,
                            str(exc.errors()[0].get("msg", ""))[:200])
                continue
            if self.trace_key is None:
                log.error("erasure command %s not applied: this monitor has no erasure key", cmd.erasure_id)
                continue
            keys, key_of = set(cmd.trace_keys), self.trace_key
            snap, n = scrub_snapshot(DriftSnapshot.model_validate_json(self.dumps()), lambda t: key_of(t) in keys)
            if n:
                self._load(snap.model_dump_json().encode())
            removed += n
            log.warning("erasure %s: %d drift-state entries dropped", cmd.erasure_id, n)
        if applied:
            await self.save()
        return []

    # --- traces ---
    async def __call__(self, judged: list[JudgedTrace]) -> list[Any]:
        for j in judged:
            self.tracker.store.remember(j)
        alarms = self.bank.observe(judged)
        self.metrics.traces.inc(len(judged))
        self.metrics.monitors.set(len(self.bank.monitors))
        self.metrics.warming.set(self.bank.warming())
        for (policy_id, signal), m in self.bank.monitors.items():
            if m.last_mean is not None:
                self.metrics.signal_mean.labels(policy_id, signal).set(m.last_mean)
                self.metrics.signal_z.labels(policy_id, signal).set(0.0 if m.warming else m.last_z)
        self.metrics.store_size.set(len(self.tracker.store))
        self.metrics.rejected.set(sum(m.rejected for m in self.bank.monitors.values()))
        futures: list[Any] = []
        events: list[DriftEvent] = [a.for_worker(self.worker) for a in alarms]
        now = self.clock()
        for a, e in zip(alarms, events):
            log.warning("drift: policy=%s signal=%s z=%.1f since=%s", e.policy_id, e.signal, e.z, e.since)
            self.metrics.on_alarm(a, now)
            futures.append(await self.send(self.drift_topic, e.policy_id.encode(),
                                           e.model_dump_json().encode()))
            req = self.trigger.on_drift(e, now)
            if req is not None:
                futures.append(await self._request(req))
        if events and self.events_sink is not None:
            offsets: dict[tuple[str, int], int] = {}
            for j in judged:
                k = (j.source.topic, j.source.partition)
                offsets[k] = max(offsets.get(k, -1), j.source.offset)
            await asyncio.to_thread(self.events_sink.write, [e.to_row() for e in events], offsets)
        if now - self._last_save >= self.cfg.checkpoint_interval_s:
            await self.save()
        return futures

    async def _request(self, req: TrainRequest) -> Any:
        self.metrics.train_requests.labels(req.policy_id, req.reason).inc()
        log.warning("retraining requested for policy %s (%s)", req.policy_id, req.reason)
        return await self.send(self.train_topic, req.policy_id.encode(), req.to_json())

    # --- labels ---
    async def on_labels(self, records: list[tuple[Any, ...]]) -> list[Any]:
        """records: (partition, offset, value[, key]) from feedback.labels. Bad records are counted and
        dead-lettered (with ``dead_letters``), never dropped silently."""
        futures: list[Any] = []
        per_policy: dict[str, int] = {}
        for partition, offset, value, *rest in records:
            if offset <= self.label_offsets.get(partition, -1):
                continue
            self.label_offsets[partition] = offset
            label = parse(Label, value)
            if not isinstance(label, tuple) and len(label.policy_id) > MAX_POLICY_ID:
                label = ("validation_error", f"policy_id longer than any trace's ({MAX_POLICY_ID} characters)")
            if isinstance(label, tuple):
                self.metrics.labels.labels("invalid").inc()
                if self.dead_letters is not None:
                    futures.append(await self.dead_letters(value, rest[0] if rest else None, self.labels_topic,
                                                           partition, offset, *label))
                continue
            res = self.tracker.on_label(label)
            self.metrics.labels.labels(str(res.matched).lower()).inc()
            per_policy[label.policy_id] = per_policy.get(label.policy_id, 0) + 1
            for judge, (p, y) in res.per_judge.items():
                if (p >= 0.5) != bool(y):
                    self.metrics.misjudged.labels(judge, label.policy_id).inc()
        now = self.clock()
        for policy_id, n in per_policy.items():
            req = self.trigger.on_labels(policy_id, n, now)
            if req is not None:
                futures.append(await self._request(req))
        if self.tracker.due():
            await self.publish_calibration()
        return futures

    async def publish_calibration(self) -> list[dict[str, Any]]:
        rows = self.tracker.snapshot()
        for r in rows:
            key = (r["judge"], r["policy_id"])
            self.metrics.ece.labels(*key).set(r["ece"])
            self.metrics.brier.labels(*key).set(r["brier"])
            self.metrics.window.labels(*key).set(r["window_n"])
            for i, b in enumerate(self.tracker.stats(*key)["bins"]):
                if b.count:
                    self.metrics.bin_pred.labels(*key, str(i)).set(b.mean_p)
                    self.metrics.bin_obs.labels(*key, str(i)).set(b.observed)
        if rows and self.calibration_sink is not None:
            # one Delta transaction per labels partition: a replayed label batch does not land twice
            offsets = {(self.labels_topic, p): o for p, o in self.label_offsets.items()}
            await asyncio.to_thread(self.calibration_sink.write, rows, offsets)
        return rows
