"""Calibration tracking: join labels with remembered confidences; windowed ECE/Brier/bins per (judge, policy)."""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from schemas.preference import Label
from streams.drift.calibration import brier, ece, reliability_bins
from streams.drift.clusters import error_clusters
from streams.drift.config import CalibrationConfig
from streams.drift.confidences import ConfidenceStore
from schemas.drift_state import OtherConfig, TrackerState, WindowState


@dataclass
class _Window:
    pairs: deque  # (p_pass, y)
    misjudged: deque  # (trace_id, snippet)
    labels: int = 0
    wrong: int = 0


@dataclass
class JoinResult:
    matched: bool
    per_judge: dict[str, tuple[float, int]] = field(default_factory=dict)  # judge -> (p, y)


class CalibrationTracker:
    def __init__(self, cfg: CalibrationConfig):
        self.cfg = cfg
        self.store = ConfidenceStore(cfg.store_size)
        self.windows: dict[tuple[str, str], _Window] = {}
        self.since_snapshot = 0
        self.matched = self.unmatched = 0

    def _window(self, judge: str, policy_id: str) -> _Window:
        key = (judge, policy_id)
        if key not in self.windows:
            self.windows[key] = _Window(deque(maxlen=self.cfg.window), deque(maxlen=self.cfg.misjudged_buffer))
        return self.windows[key]

    def on_label(self, label: Label) -> JoinResult:
        seen = self.store.get(label.trace_id)
        if seen is None:
            self.unmatched += 1
            return JoinResult(False)
        self.matched += 1
        self.since_snapshot += 1
        y = int(label.passed)
        out = JoinResult(True)
        for judge, p in seen.by_judge().items():
            w = self._window(judge, seen.policy_id)
            w.pairs.append((float(p), y))
            w.labels += 1
            if (p >= 0.5) != bool(y):
                w.wrong += 1
                w.misjudged.append((label.trace_id, seen.snippet))
            out.per_judge[judge] = (float(p), y)
        return out

    def due(self) -> bool:
        return self.since_snapshot >= self.cfg.snapshot_every

    def stats(self, judge: str, policy_id: str) -> dict[str, Any]:
        w = self.windows[(judge, policy_id)]
        p, y = [a for a, _ in w.pairs], [b for _, b in w.pairs]
        return {"judge": judge, "policy_id": policy_id, "window_n": len(p), "ece": ece(p, y, self.cfg.bins),
                "brier": brier(p, y), "bins": reliability_bins(p, y, self.cfg.bins), "labels_total": w.labels,
                "misjudged_total": w.wrong}

    def snapshot(self, now: datetime | None = None, with_clusters: bool = True) -> list[dict[str, Any]]:
        """Rows of the ``calibration`` table, one per (judge, policy)."""
        now = now or datetime.now(timezone.utc)
        self.since_snapshot = 0
        rows = []
        for (judge, policy_id), w in sorted(self.windows.items()):
            s = self.stats(judge, policy_id)
            clusters = error_clusters(list(w.misjudged), self.cfg.clusters) if with_clusters else []
            rows.append({"ts": now, "date": now.date().isoformat(), "judge": judge, "policy_id": policy_id,
                         "window_n": s["window_n"], "ece": s["ece"], "brier": s["brier"],
                         "bins_json": json.dumps([[b.lo, b.hi, b.count, b.mean_p,
                                                   None if b.count == 0 else b.observed] for b in s["bins"]]),
                         "labels_total": s["labels_total"], "misjudged_total": s["misjudged_total"],
                         "clusters_json": json.dumps(clusters)})
        return rows

    # --- persistence (snapshot.py) ---
    def state(self) -> TrackerState:
        return TrackerState(
            config=self.cfg.model_dump(mode="json"), store=self.store.state(),
            windows=[WindowState(judge=j, policy_id=p, pairs=list(w.pairs), misjudged=list(w.misjudged),
                                 labels=w.labels, wrong=w.wrong) for (j, p), w in self.windows.items()],
            since_snapshot=self.since_snapshot, matched=self.matched, unmatched=self.unmatched)

    @classmethod
    def from_state(cls, s: TrackerState, cfg: CalibrationConfig) -> "CalibrationTracker":
        if s.config != cfg.model_dump(mode="json"):
            raise OtherConfig("calibration config changed")
        t = cls(cfg)
        t.store = ConfidenceStore.from_state(s.store, cfg.store_size)
        for w in s.windows:
            if len(w.pairs) > cfg.window or len(w.misjudged) > cfg.misjudged_buffer:
                raise ValueError(f"calibration window ({w.judge}, {w.policy_id}) is longer than configured")
            win = t._window(w.judge, w.policy_id)
            win.pairs.extend(w.pairs)
            win.misjudged.extend(w.misjudged)
            win.labels, win.wrong = w.labels, w.wrong
        t.since_snapshot, t.matched, t.unmatched = s.since_snapshot, s.matched, s.unmatched
        return t
