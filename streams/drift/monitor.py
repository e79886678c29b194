"""One drift monitor per (policy_id, signal): block means, a warm-up reference, a river detector.

Why blocks: per-trace values are 0/1 or heavy-tailed, and a detector tuned on them either fires every few
thousand stable traces or waits minutes. Averaging ``block`` traces gives near-normal values; standardising them
against a reference learned in warm-up makes one detector setting fit every signal. After an alarm the monitor
re-learns its reference on the new regime, so one change is reported once.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.drift import DriftEvent
from streams.drift.config import MonitorConfig
from streams.drift.detectors import detector_input, make_detector


@dataclass
class Block:
    first_ts: datetime
    last_ts: datetime
    mean: float
    z: float
    trace_ids: list[str]


# One model per concept: what a monitor raises is the drift event itself (``schemas.drift.DriftEvent``); the worker
# stamps its name on it before publishing. ``DriftAlarm`` is the name the drift package knows it by.
DriftAlarm = DriftEvent


class BlockStats:
    """Welford mean/variance."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class DriftMonitor:
    """Feed per-trace values with ``update``, or whole blocks with ``update_block``; read ``drift_detected``."""

    def __init__(self, signal: str, policy_id: str, cfg: MonitorConfig, *, one_sided: bool = False):
        self.signal = signal
        self.policy_id = policy_id
        self.cfg = cfg
        self.one_sided = one_sided  # distances only grow under drift
        self.detector_kind = cfg.detector
        params = dict(cfg.params)
        if one_sided and cfg.detector == "page_hinkley":
            params["mode"] = "up"
        self._params = params
        self.detector = make_detector(cfg.detector, params)
        self.drift_detected = False
        self.alarms = 0
        self._sum, self._n, self._ids = 0.0, 0, []  # the open block
        self._first_ts: datetime | None = None
        self._trace_stats = BlockStats()   # per-trace values in warm-up (a second std estimate)
        self._block_stats = BlockStats()   # block means in warm-up
        self.ref_mean: float | None = None
        self.ref_std = 0.0
        self._recent: deque[Block] = deque(maxlen=400)
        self._blocks = 0
        self.last_mean: float | None = None  # for the signal gauges
        self.last_z = 0.0

    @property
    def warming(self) -> bool:
        return self.ref_mean is None

    def update(self, x: float, trace_id: str, ts: datetime) -> DriftAlarm | None:
        if self._n == 0:
            self._first_ts = ts
        self._sum += x
        self._n += 1
        if len(self._ids) < self.cfg.examples:
            self._ids.append(trace_id)
        if self.warming:
            self._trace_stats.add(x)
        if self._n < self.cfg.block:
            return None
        mean, ids, first = self._sum / self._n, self._ids, self._first_ts or ts
        self._sum, self._n, self._ids = 0.0, 0, []
        return self.update_block(mean, first, ts, ids)

    def update_block(self, mean: float, first_ts: datetime, last_ts: datetime,
                     trace_ids: list[str]) -> DriftAlarm | None:
        self.drift_detected = False
        self._blocks += 1
        self.last_mean = mean
        if self.warming:
            self._block_stats.add(mean)
            if self._block_stats.n >= self.cfg.warmup_blocks:
                self._freeze_reference()
            return None
        z = self.last_z = (mean - self.ref_mean) / self.ref_std  # type: ignore[operator]
        self._recent.append(Block(first_ts, last_ts, mean, z, trace_ids))
        self.detector.update(detector_input(self.detector_kind, z))
        if not self.detector.drift_detected:
            return None
        alarm = self._alarm(last_ts)
        if self.one_sided and alarm.z <= 0:
            return None  # a distance that shrank is no drift
        self.drift_detected = True
        self.alarms += 1
        self._rewarm()
        return alarm

    def _freeze_reference(self) -> None:
        per_trace = self._trace_stats.std / math.sqrt(self.cfg.block) if self._trace_stats.n > 1 else 0.0
        # the larger of the two estimates: block std is robust to correlated traces, per-trace std is precise
        self.ref_mean = self._block_stats.mean
        self.ref_std = max(self._block_stats.std, per_trace, self.cfg.min_std)

    def _rewarm(self) -> None:
        self.ref_mean, self.ref_std = None, 0.0
        self._trace_stats, self._block_stats = BlockStats(), BlockStats()
        self.detector = make_detector(self.detector_kind, self._params)
        self._recent.clear()

    def _onset(self) -> int:
        """Index into ``_recent`` where the change most likely began: the split that maximises the
        standardised difference of means before/after (the maximum-likelihood change point for a mean shift)."""
        z = [b.z for b in self._recent]
        n = len(z)
        if n < 2:
            return 0
        total, prefix, best, best_k = sum(z), 0.0, -1.0, n - 1
        for k in range(1, n):
            prefix += z[k - 1]
            after = (total - prefix) / (n - k)
            before = prefix / k
            t = abs(after - before) * math.sqrt(k * (n - k) / n)
            if t > best:
                best, best_k = t, k
        return best_k

    def _alarm(self, detected_at: datetime) -> DriftAlarm:
        blocks = list(self._recent)
        since_blocks = blocks[self._onset():]
        current = sum(b.mean for b in since_blocks) / len(since_blocks)
        ids: list[str] = []
        for b in since_blocks:
            ids.extend(b.trace_ids[: max(1, self.cfg.examples // len(since_blocks) + 1)])
        ref = float(self.ref_mean or 0.0)
        return DriftAlarm(signal=self.signal, policy_id=self.policy_id, detector=self.detector_kind,
                          since=since_blocks[0].first_ts, detected_at=detected_at, ref_mean=ref,
                          ref_std=self.ref_std, current_mean=current, z=(current - ref) / self.ref_std,
                          n_blocks_since=len(since_blocks), example_trace_ids=ids[: self.cfg.examples])

    def state(self) -> dict[str, Any]:
        """Picklable state (river detectors pickle as they are)."""
        return self.__dict__.copy()

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "DriftMonitor":
        m = cls.__new__(cls)
        m.__dict__.update(state)
        return m
