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

from schemas.drift import DriftEvent
from streams.drift.config import MonitorConfig
from streams.drift.detectors import detector_input, dump_detector, load_detector, make_detector
from schemas.drift_state import BlockState, MonitorState, StatsState

MAX_ABS_VALUE = 1e12  # no signal we compute comes near; beyond it (or NaN/inf) a value is rejected and counted


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

    def state(self) -> StatsState:
        return StatsState(n=self.n, mean=self.mean, m2=self.m2)

    @classmethod
    def from_state(cls, s: StatsState) -> "BlockStats":
        b = cls()
        b.n, b.mean, b.m2 = s.n, s.mean, s.m2
        return b


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
        self.rejected = 0  # NaN, inf or absurdly large inputs, ignored
        self.errors = 0  # detector failures (each restarts this monitor's warm-up)
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
        if not math.isfinite(x) or abs(x) > MAX_ABS_VALUE:
            self.rejected += 1
            return None
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
        if not math.isfinite(mean) or abs(mean) > MAX_ABS_VALUE:
            self.rejected += 1
            return None
        self._blocks += 1
        self.last_mean = mean
        if self.warming:
            self._block_stats.add(mean)
            if self._block_stats.n >= self.cfg.warmup_blocks:
                self._freeze_reference()
            return None
        z = self.last_z = (mean - self.ref_mean) / self.ref_std  # type: ignore[operator]
        self._recent.append(Block(first_ts, last_ts, mean, z, trace_ids))
        try:
            self.detector.update(detector_input(self.detector_kind, z))
            fired = bool(self.detector.drift_detected)
        except Exception:  # a river failure must not stop the worker: this monitor learns its reference again
            self.errors += 1
            self._rewarm()
            return None
        if not fired:
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

    def state(self) -> MonitorState:
        """The monitor as data (see ``snapshot.py``)."""
        return MonitorState(
            signal=self.signal, policy_id=self.policy_id, one_sided=self.one_sided,
            detector=dump_detector(self.detector), drift_detected=self.drift_detected, alarms=self.alarms,
            rejected=self.rejected, errors=self.errors, open_sum=self._sum, open_n=self._n,
            open_ids=list(self._ids), open_first_ts=self._first_ts, trace_stats=self._trace_stats.state(),
            block_stats=self._block_stats.state(), ref_mean=self.ref_mean, ref_std=self.ref_std,
            recent=[BlockState(first_ts=b.first_ts, last_ts=b.last_ts, mean=b.mean, z=b.z,
                               trace_ids=list(b.trace_ids)) for b in self._recent],
            blocks=self._blocks, last_mean=self.last_mean, last_z=self.last_z)

    @classmethod
    def from_state(cls, s: MonitorState, cfg: MonitorConfig) -> "DriftMonitor":
        """A monitor restored under ``cfg``; ValueError when the snapshot does not fit it."""
        if s.one_sided != s.signal.startswith("embedding:"):
            raise ValueError(f"{s.signal}: only embedding distances are one-sided")
        m = cls(s.signal, s.policy_id, cfg, one_sided=s.one_sided)
        if len(s.open_ids) > cfg.examples or any(len(b.trace_ids) > cfg.examples for b in s.recent):
            raise ValueError(f"{s.signal}: more example ids than configured")
        if s.open_n >= cfg.block:
            raise ValueError(f"{s.signal}: open block longer than the configured block")
        m.detector = load_detector(m.detector_kind, m._params, s.detector)
        m.drift_detected, m.alarms, m.rejected, m.errors = s.drift_detected, s.alarms, s.rejected, s.errors
        m._sum, m._n, m._ids, m._first_ts = s.open_sum, s.open_n, list(s.open_ids), s.open_first_ts
        m._trace_stats, m._block_stats = BlockStats.from_state(s.trace_stats), BlockStats.from_state(s.block_stats)
        m.ref_mean, m.ref_std = s.ref_mean, s.ref_std
        m._recent.extend(Block(b.first_ts, b.last_ts, b.mean, b.z, list(b.trace_ids)) for b in s.recent)
        m._blocks, m.last_mean, m.last_z = s.blocks, s.last_mean, s.last_z
        return m
