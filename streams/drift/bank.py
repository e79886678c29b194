"""All monitors of one worker, keyed per (policy_id, signal); the pure core of the drift hook.

``observe`` takes judged traces and returns the alarms raised. It also remembers the last source offset per
(topic, partition) it has seen, so a batch that Kafka redelivers after a crash is not counted twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import numpy as np

from schemas.verdict import JudgedTrace
from streams.drift.config import DriftConfig
from streams.drift.embedding import CentroidDistance, HashedEmbedder
from streams.drift.monitor import DriftAlarm, DriftMonitor
from streams.drift.signals import scalar_signals, texts
from schemas.drift_state import BankState, EmbeddingState, OtherConfig, SourceOffset


@dataclass
class _EmbeddingBlock:
    """Vectors of one (policy, field) accumulating into one block, and the centroid-distance statistic."""

    dist: CentroidDistance
    total: np.ndarray
    n: int = 0
    first_ts: datetime | None = None
    ids: list[str] = field(default_factory=list)


class MonitorBank:
    def __init__(self, cfg: DriftConfig):
        self.cfg = cfg
        self.monitors: dict[tuple[str, str], DriftMonitor] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        self.seen = 0
        self._emb: dict[tuple[str, str], _EmbeddingBlock] = {}
        ecfg = cfg.signals.embedding
        self.embedder = HashedEmbedder(ecfg.dim) if ecfg.enabled else None

    def monitor(self, policy_id: str, signal: str, *, one_sided: bool = False) -> DriftMonitor:
        key = (policy_id, signal)
        m = self.monitors.get(key)
        if m is None:
            m = self.monitors[key] = DriftMonitor(signal, policy_id, self.cfg.monitor_for(signal),
                                                  one_sided=one_sided)
        return m

    def observe(self, judged: Iterable[JudgedTrace]) -> list[DriftAlarm]:
        alarms: list[DriftAlarm] = []
        for j in judged:
            src = (j.source.topic, j.source.partition)
            if j.source.offset <= self.offsets.get(src, -1):
                continue  # redelivered after a restart: already counted
            self.offsets[src] = j.source.offset
            self.seen += 1
            t = j.trace
            for name, value in scalar_signals(j, self.cfg.signals).items():
                alarm = self.monitor(t.policy_id, name).update(value, t.trace_id, t.timestamp)
                if alarm:
                    alarms.append(alarm)
            if self.embedder is not None:
                alarms.extend(self._observe_text(j))
        return alarms

    def _observe_text(self, j: JudgedTrace) -> list[DriftAlarm]:
        t, out = j.trace, []
        tx = texts(j)
        for fld in self.cfg.signals.embedding.fields:
            signal = f"embedding:{fld}"
            mcfg = self.cfg.monitor_for(signal)
            key = (t.policy_id, fld)
            acc = self._emb.get(key)
            if acc is None:
                acc = self._emb[key] = _EmbeddingBlock(CentroidDistance(self.embedder.dim, mcfg.warmup_blocks),
                                                       np.zeros(self.embedder.dim))
            if acc.n == 0:
                acc.first_ts = t.timestamp
            acc.total += self.embedder.embed(tx[fld])
            acc.n += 1
            if len(acc.ids) < mcfg.examples:
                acc.ids.append(t.trace_id)
            if acc.n < mcfg.block:
                continue
            d = acc.dist.update(acc.total / acc.n)
            ids, first = acc.ids, acc.first_ts or t.timestamp
            acc.total[:] = 0.0
            acc.n, acc.ids = 0, []
            if d is None:
                continue  # the reference centroid is still being learned
            mon = self.monitor(t.policy_id, signal, one_sided=True)
            alarm = mon.update_block(d, first, t.timestamp, ids)
            if alarm:
                acc.dist.reset()  # learn the new regime's centroid, then its noise floor
                out.append(alarm)
        return out

    # --- persistence: plain data (snapshot.py); anything that does not fit means a fresh (warming, silent) bank
    def state(self) -> BankState:
        return BankState(
            config=self.cfg.model_dump(mode="json"), monitors=[m.state() for m in self.monitors.values()],
            offsets=[SourceOffset(topic=t, partition=p, offset=o) for (t, p), o in self.offsets.items()],
            seen=self.seen,
            emb=[EmbeddingState(policy_id=pol, field=fld, dist=e.dist.state(), total=e.total.tolist(), n=e.n,
                                first_ts=e.first_ts, ids=list(e.ids)) for (pol, fld), e in self._emb.items()])

    @classmethod
    def from_state(cls, state: BankState, cfg: DriftConfig) -> "MonitorBank":
        """Restore a bank; a snapshot from another config or one that does not fit raises ValueError."""
        if state.config != cfg.model_dump(mode="json"):
            raise OtherConfig("drift state was written under a different drift config")
        bank = cls(cfg)
        for s in state.monitors:
            key = (s.policy_id, s.signal)
            if key in bank.monitors:
                raise ValueError(f"monitor {key} appears twice")
            bank.monitors[key] = DriftMonitor.from_state(s, cfg.monitor_for(s.signal))
        bank.offsets = {(o.topic, o.partition): o.offset for o in state.offsets}
        bank.seen = state.seen
        ecfg = cfg.signals.embedding
        for e in state.emb:
            mcfg = cfg.monitor_for(f"embedding:{e.field}")
            if bank.embedder is None or len(e.total) != ecfg.dim or e.n >= mcfg.block or len(e.ids) > mcfg.examples:
                raise ValueError(f"embedding block ({e.policy_id}, {e.field}) does not fit the config")
            bank._emb[(e.policy_id, e.field)] = _EmbeddingBlock(
                CentroidDistance.from_state(e.dist, ecfg.dim, mcfg.warmup_blocks),
                np.asarray(e.total, dtype=np.float64), e.n, e.first_ts, list(e.ids))
        return bank

    def dumps(self) -> bytes:
        return self.state().model_dump_json().encode()

    @classmethod
    def loads(cls, blob: bytes, cfg: DriftConfig) -> "MonitorBank":
        """``from_state`` of a JSON document; ValueError when it is not a valid bank."""
        return cls.from_state(BankState.model_validate_json(blob), cfg)

    def warming(self) -> int:
        return sum(m.warming for m in self.monitors.values())
