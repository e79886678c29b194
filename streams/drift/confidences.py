"""Bounded store of recent trace_id -> the judges' pass probabilities, for joining late labels.

Labels arrive minutes to days after the trace; the store keeps the newest ``size`` traces (LRU by insertion)
and a short text snippet of each, which the error clustering reads when a label shows a judge was wrong.
"""
from __future__ import annotations

from array import array
from collections import OrderedDict
from dataclasses import dataclass

from schemas.verdict import JudgedTrace
from streams.drift.calibration import p_pass

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
