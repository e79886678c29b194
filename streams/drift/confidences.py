"""Bounded store of recent trace_id -> the judges' pass probabilities, for joining late labels.

Labels arrive minutes to days after the trace; the store keeps the newest ``size`` traces (LRU by insertion)
and a short text snippet of each, which the error clustering reads when a label shows a judge was wrong.
"""
from __future__ import annotations

import base64
import math
import sys
from array import array
from collections import OrderedDict
from dataclasses import dataclass

from schemas.verdict import JudgedTrace
from streams.drift.calibration import p_pass
from schemas.drift_state import StoreState

SNIPPET_CHARS = 160


@dataclass(frozen=True)
class Remembered:
    policy_id: str
    judges: tuple[str, ...]
    p: array  # pass probability per judge, aligned with ``judges``
    snippet: str

    def by_judge(self) -> dict[str, float]:
        return dict(zip(self.judges, self.p))


class ConfidenceStore:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._items: OrderedDict[str, Remembered] = OrderedDict()
        self._judge_sets: dict[tuple[str, ...], tuple[str, ...]] = {}  # share one tuple per judge set
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, j: JudgedTrace) -> None:
        ok = [v for v in j.verdicts if v.status == "ok"]
        if not ok:
            return
        names = tuple(v.judge for v in ok)
        names = self._judge_sets.setdefault(names, names)
        t = j.trace
        snippet = (t.user_message[: SNIPPET_CHARS // 2] + " || " + t.final_response[: SNIPPET_CHARS // 2])
        self._items[t.trace_id] = Remembered(t.policy_id, names, array("f", (p_pass(v.passed, v.confidence)
                                                                              for v in ok)), snippet)
        self._items.move_to_end(t.trace_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
            self.evicted += 1

    def get(self, trace_id: str) -> Remembered | None:
        return self._items.get(trace_id)

    # --- persistence: pass probabilities as base64 float32 (little-endian), exact and a third of their text size
    def state(self) -> StoreState:
        sets = {names: i for i, names in enumerate(self._judge_sets.values())}
        items = []
        for trace_id, r in self._items.items():
            p = array("f", r.p)
            if sys.byteorder == "big":
                p.byteswap()
            items.append((trace_id, r.policy_id, sets[r.judges], base64.b64encode(p.tobytes()).decode(), r.snippet))
        return StoreState(size=self.size, evicted=self.evicted, judge_sets=[list(n) for n in sets], items=items)

    @classmethod
    def from_state(cls, s: StoreState, size: int) -> "ConfidenceStore":
        if len(s.items) > size:
            raise ValueError("confidence store holds more traces than configured")
        store = cls(size)
        sets = [tuple(n) for n in s.judge_sets]
        for names in sets:
            store._judge_sets.setdefault(names, names)
        for trace_id, policy_id, k, b64, snippet in s.items:
            if k >= len(sets):
                raise ValueError("confidence store names an unknown judge set")
            p = array("f")
            p.frombytes(base64.b64decode(b64, validate=True))  # ValueError unless whole float32s
            if sys.byteorder == "big":
                p.byteswap()
            if len(p) != len(sets[k]) or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in p):
                raise ValueError("confidence store holds probabilities that do not fit their judges")
            store._items[trace_id] = Remembered(policy_id, store._judge_sets[sets[k]], p, snippet)
        store.evicted = s.evicted
        return store
