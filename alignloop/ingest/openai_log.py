"""`alignloop ingest openai-log`: stream a JSONL log into agent.traces, bad lines into the DLQ, nothing stops."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

from alignloop.ingest.sink import IngestSink, dead_letter
from streams.ingest.openai_log import LineError, parse_line

if TYPE_CHECKING:
    from schemas.settings import Settings


async def ingest_lines(settings: "Settings", stream: BinaryIO, *, source: str, default_agent: str | None = None,
                       flush_every: int = 2000, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Publish every line of ``stream``; returns counts (lines, traces, dead, reasons). Waits for every ack."""
    from connectors.kafka import producer

    reasons: Counter[str] = Counter()
    lines = 0
    async with producer(settings) as prod:
        sink = IngestSink(settings, prod)
        for n, raw in enumerate(stream, start=1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            lines += 1
            try:
                await sink.trace(parse_line(raw, line=n, source=source, default_agent=default_agent))
            except LineError as exc:
                reasons[exc.reason] += 1
                await sink.dead(dead_letter(source=source, reason=exc.reason, error=str(exc), key=None, value=raw,
                                            line=n))
            if lines % flush_every == 0:
                await sink.flush()
                if progress:
                    progress(lines)
        await sink.flush()
    return {"lines": lines, "traces": sink.sent_traces, "dead": sink.sent_dead,
            "reasons": ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))}
