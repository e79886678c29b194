"""Turning one partition of ``ingest.otlp_spans`` back into turns, so that a crash loses and repeats nothing (pure;
the caller passes offsets and the clock).

The receiver acknowledged the spans once Kafka held them; the assembler reads them, groups them per OTel trace
(released when the root span arrives or after ``settle_s`` of quiet, as ``TurnBuffer`` does) and publishes each
turn to ``agent.traces`` in a Kafka transaction that also writes a ``done`` marker for the trace into this same
partition and commits the consumer offset. Two rules make a restart exact:

- the offset committed is the first offset of the oldest turn still open (or the read position when none is), so
  every span of an open turn is read again after a crash;
- re-reading from there finds the ``done`` marker of every turn published since (it sits after the turn's spans,
  and it is in the log exactly when the publish is: one transaction), so those spans are dropped, not republished.
  Until the read position reaches the partition's end as it was at start (``replay_end``), nothing is released:
  a turn complete in the replayed range may still meet its marker further on.

Spans re-sent by an exporter (a 503 whose records Kafka did take) are held once; a re-sent span of a turn already
published is dropped while that turn is among the last ``remember`` published (markers re-read after a restart
count).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from streams.ingest.otlp import Span


@dataclass
class _Open:
    first_offset: int
    spans: list[Span] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    last_seen: float = 0.0
    complete: bool = False  # its root span arrived


@dataclass
class PartitionTurns:
    settle_s: float = 5.0
    replay_end: int = 0      # the partition's end offset when this state was (re)built
    position: int = 0        # the next offset to read
    remember: int = 100_000  # published turns whose span ids are kept for dropping re-sent spans
    _open: dict[str, _Open] = field(default_factory=dict)
    _published: "OrderedDict[str, frozenset[str]]" = field(default_factory=OrderedDict)
    held: int = 0

    @property
    def caught_up(self) -> bool:
        return self.position >= self.replay_end

    def feed(self, offset: int, record: dict[str, Any], now: float) -> list[list[Span]]:
        """Take the record at ``offset`` (an ``OtlpSpanRecord`` as a dict); returns the turns now complete."""
        self.position = max(self.position, offset + 1)
        tid = record["trace_id"]
        if record["kind"] == "done":
            p = self._open.pop(tid, None)
            if p is not None:
                self.held -= len(p.spans)
            self._remember(tid, record.get("span_ids") or [])
            return []
        seen = self._published.get(tid, frozenset())
        p = self._open.get(tid)
        for d in record.get("spans") or []:
            s = Span.from_dict(d)
            if s.span_id in seen or (p is not None and s.span_id in p.ids):
                continue
            if p is None:
                p = self._open[tid] = _Open(first_offset=offset)
            p.ids.add(s.span_id)
            p.spans.append(s)
            p.last_seen = now
            self.held += 1
            if not s.parent_id:
                p.complete = True
        if p is not None and p.complete and self.caught_up:
            return [self._take(tid)]
        return []

    def advance(self, position: int) -> None:
        """The consumer's position (past transaction control records too, which no record reports)."""
        self.position = max(self.position, position)

    def due(self, now: float) -> list[list[Span]]:
        """Once caught up: turns complete during the replay and turns quiet for ``settle_s``."""
        if not self.caught_up:
            return []
        ready = [t for t, p in self._open.items() if p.complete or now - p.last_seen >= self.settle_s]
        return [self._take(t) for t in ready]

    def commit_offset(self) -> int:
        """Where a restart must read from: the first record of the oldest open turn, else the read position."""
        return min((p.first_offset for p in self._open.values()), default=self.position)

    def _take(self, tid: str) -> list[Span]:
        p = self._open.pop(tid)
        self.held -= len(p.spans)
        self._remember(tid, p.ids)
        return p.spans

    def _remember(self, tid: str, ids: Any) -> None:
        self._published[tid] = self._published.get(tid, frozenset()) | frozenset(ids)
        self._published.move_to_end(tid)
        while len(self._published) > self.remember:
            self._published.popitem(last=False)
