"""Where ingested turns go: Trace records to ``agent.traces``, what could not be mapped to ``agent.traces.dlq``."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from schemas.dlq import MAX_ERROR_CHARS, DeadLetter
from schemas.topics import DLQ, OTLP_SPANS, TRACES
from schemas.trace import Trace

if TYPE_CHECKING:
    from schemas.settings import Settings


def dead_letter(*, source: str, reason: str, error: str, key: bytes | None, value: bytes, line: int = -1
                ) -> DeadLetter:
    """A dead letter for input that never was a Kafka record: ``source`` names where it came from (``otlp`` or
    the log file), ``line`` its line number (-1 for spans); partition is -1."""
    return DeadLetter(stage="ingest", reason=reason, error=error[:MAX_ERROR_CHARS], topic=source,  # type: ignore[arg-type]
                      partition=-1, offset=line, size_bytes=len(value), failed_at=datetime.now(timezone.utc),
                      key=key, value=value)


class IngestSink:
    """Sends traces and dead letters through one started aiokafka producer; ``flush`` waits for every ack."""

    def __init__(self, settings: "Settings", producer: Any) -> None:
        self.producer = producer
        self.traces_topic = settings.topic(TRACES)
        self.dlq_topic = settings.topic(DLQ)
        self.spans_topic = settings.topic(OTLP_SPANS)
        self._futures: list[Any] = []
        self.sent_traces = 0
        self.sent_dead = 0

    async def trace(self, trace: Trace) -> Any:
        """Start sending ``trace``; returns its delivery future (``flush`` waits for it too)."""
        # keyed by conversation: a conversation's turns stay in order on one partition
        fut = await self.producer.send(self.traces_topic, trace.model_dump_json().encode(),
                                       key=trace.conversation_id.encode())
        self._futures.append(fut)
        self.sent_traces += 1
        return fut

    async def spans(self, trace_id: str, value: bytes) -> Any:
        """Start sending one OTel trace's spans of one request (an ``OtlpSpanRecord``) to ``ingest.otlp_spans``,
        keyed by trace id: a turn's spans share a partition, where one assembler groups them."""
        fut = await self.producer.send(self.spans_topic, value, key=trace_id.encode())
        self._futures.append(fut)
        return fut

    async def dead(self, letter: DeadLetter) -> Any:
        fut = await self.producer.send(self.dlq_topic, letter.value, key=letter.key, headers=letter.headers())
        self._futures.append(fut)
        self.sent_dead += 1
        return fut

    async def flush(self) -> None:
        futures, self._futures = self._futures, []
        for f in futures:
            await f

    def forget(self) -> None:
        """Drop the futures kept for ``flush`` (a caller that awaits its own, as the OTLP receiver does)."""
        self._futures.clear()
