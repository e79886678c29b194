"""Holding spans until their turn is complete (pure; the caller passes the clock).

Exporters send spans as they end, children before parents, in batches that can split a turn. Spans wait here per
OTel trace until the trace's root span (no parent) arrives — it ends last, so its turn is whole — or until no span
of that trace has arrived for ``settle_s`` (a root in another service, or a client that never sends it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from streams.ingest.otlp import Span


@dataclass
class _Pending:
    spans: list[Span] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)  # a span re-sent after a 503 is held once
    last_seen: float = 0.0


@dataclass
class TurnBuffer:
    settle_s: float = 5.0
    max_spans: int = 200_000
    _pending: dict[str, _Pending] = field(default_factory=dict)
    held: int = 0

    def room_for(self, n: int) -> bool:
        """Whether ``n`` more spans fit (the receiver answers 503, retryable, when they do not)."""
        return self.held + n <= self.max_spans

    def add(self, spans: list[Span], now: float) -> list[list[Span]]:
        """Buffer ``spans``; returns the OTel traces now complete (their root span arrived)."""
        done: list[str] = []
        for s in spans:
            p = self._pending.setdefault(s.trace_id, _Pending())
            if s.span_id in p.ids:
                continue
            p.ids.add(s.span_id)
            p.spans.append(s)
            p.last_seen = now
            self.held += 1
            if not s.parent_id:
                done.append(s.trace_id)
        return [self._take(t) for t in dict.fromkeys(done)]

    def restore(self, groups: list[list[Span]], now: float) -> None:
        """Put taken traces back (their publish failed): held again, released by the settle window (a re-sent root
        is a duplicate, so it does not release them)."""
        for spans in groups:
            p = self._pending.setdefault(spans[0].trace_id, _Pending()) if spans else None
            for s in spans:
                if p is not None and s.span_id not in p.ids:
                    p.ids.add(s.span_id)
                    p.spans.append(s)
                    self.held += 1
            if p is not None:
                p.last_seen = now

    def settled(self, now: float) -> list[list[Span]]:
        """The OTel traces idle for ``settle_s``: taken out and returned."""
        idle = [t for t, p in self._pending.items() if now - p.last_seen >= self.settle_s]
        return [self._take(t) for t in idle]

    def drain(self) -> list[list[Span]]:
        """Everything held (at shutdown)."""
        return [self._take(t) for t in list(self._pending)]

    def _take(self, trace_id: str) -> list[Span]:
        p = self._pending.pop(trace_id)
        self.held -= len(p.spans)
        return p.spans
