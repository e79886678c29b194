"""The OTLP turn assembler (`alignloop ingest assemble`, or inside `alignloop ingest otlp`): ``ingest.otlp_spans``
-> one Trace per agent turn on ``agent.traces``, exactly once under ``kill -9``.

Read-process-write in Kafka transactions, one transactional producer per partition of ``ingest.otlp_spans`` with
a stable transactional id (``alignloop-otlp-assembler:<topic>:<partition>``): starting it fences any older
assembler of that partition and aborts its open transaction. Each transaction holds the partition's published
traces, their dead letters, a ``done`` marker per trace (into the same partition) and the consumer offset
(``send_offsets_to_transaction``): all of it lands, or none. The rules that make a restart exact are in
``streams.ingest.assembly``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from alignloop.ingest.sink import dead_letter
from connectors.kafka import aiokafka_client_kwargs
from schemas.otlp_spans import OTLP_SPANS_SCHEMA_VERSION, OtlpSpanRecord
from schemas.topics import DLQ, OTLP_SPANS, TRACES
from streams.ingest.assembly import PartitionTurns
from streams.ingest.genai import map_otel_trace
from streams.ingest.otlp import Span

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "otlp:/v1/traces"


def group_id(settings: "Settings") -> str:
    return f"alignloop-otlp-assembler:{settings.topic(OTLP_SPANS)}"


class Assembler:
    def __init__(self, settings: "Settings", *, settle_s: float = 5.0, partitions: list[int] | None = None,
                 turns_counter: Any = None, poll_s: float = 0.2) -> None:
        self.settings = settings
        self.settle_s = settle_s
        self.only = partitions
        self.turns_counter = turns_counter
        self.poll_s = poll_s
        self.topic = settings.topic(OTLP_SPANS)
        self.traces_topic = settings.topic(TRACES)
        self.dlq_topic = settings.topic(DLQ)
        self.group = group_id(settings)
        self.consumer: Any = None
        self.producers: dict[int, Any] = {}
        self.parts: dict[int, PartitionTurns] = {}
        self.committed: dict[int, int] = {}
        self.published = 0

    async def _producer(self, p: int) -> Any:
        from aiokafka import AIOKafkaProducer

        prod = AIOKafkaProducer(**aiokafka_client_kwargs(self.settings), acks="all", enable_idempotence=True,
                                transactional_id=f"alignloop-otlp-assembler:{self.topic}:{p}",
                                max_request_size=10 << 20, linger_ms=5)
        await prod.start()  # fences the previous owner of this id, aborting its open transaction
        return prod

    async def _rebuild(self, p: int) -> None:
        """(Re)build partition ``p``'s open turns: seek to the committed offset, replay up to the current end."""
        from aiokafka import TopicPartition

        tp = TopicPartition(self.topic, p)
        committed = await self.consumer.committed(tp)
        end = (await self.consumer.end_offsets([tp]))[tp]
        start = committed if committed is not None else 0
        if committed is None:
            await self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, committed)
        self.parts[p] = PartitionTurns(settle_s=self.settle_s, replay_end=end, position=start)
        self.committed[p] = start

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self.consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(self.settings), group_id=self.group,
                                         enable_auto_commit=False, isolation_level="read_committed",
                                         auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20)
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(self.topic)
        for _ in range(50):
            if parts:
                break
            await self.consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            parts = self.consumer.partitions_for_topic(self.topic)
            if not parts:
                await asyncio.sleep(0.2)
        if not parts:
            raise RuntimeError(f"topic {self.topic} does not exist; run `alignloop broker init`")
        mine = sorted(p for p in parts if self.only is None or p in self.only)
        for p in mine:
            self.producers[p] = await self._producer(p)
        self.consumer.assign([TopicPartition(self.topic, p) for p in mine])
        for p in mine:  # after the producers fenced the old owners: their transactions are aborted, the end is final
            await self._rebuild(p)

    async def stop(self) -> None:
        for prod in self.producers.values():
            try:
                await prod.stop()
            except Exception:  # a fenced producer may refuse a clean stop
                pass
        self.producers.clear()
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def _publish(self, p: int, groups: list[list[Span]]) -> None:
        from aiokafka import TopicPartition
        from aiokafka.structs import OffsetAndMetadata

        part, prod = self.parts[p], self.producers[p]
        offset = part.commit_offset()
        n = 0
        async with prod.transaction():
            for spans in groups:
                tid = spans[0].trace_id
                traces, bad = map_otel_trace(spans)
                for t in traces:  # keyed by conversation: a conversation's turns stay in order on one partition
                    await prod.send(self.traces_topic, t.model_dump_json().encode(),
                                    key=t.conversation_id.encode())
                n += len(traces)
                for r in bad:
                    letter = dead_letter(source=SOURCE, reason=r.reason, error=r.error, key=r.span.trace_id.encode(),
                                         value=r.span.to_json())
                    await prod.send(self.dlq_topic, letter.value, key=letter.key, headers=letter.headers())
                done = OtlpSpanRecord(kind="done", trace_id=tid, span_ids=[s.span_id for s in spans])
                await prod.send(self.topic, done.model_dump_json().encode(), key=tid.encode(), partition=p)
            await prod.send_offsets_to_transaction({TopicPartition(self.topic, p): OffsetAndMetadata(offset, "")},
                                                   self.group)
        self.committed[p] = offset
        self.published += n
        if self.turns_counter is not None:
            self.turns_counter.labels("otlp").inc(n)

    async def step(self) -> None:
        """One poll: feed what arrived, publish what is complete or settled (one transaction per partition)."""
        from aiokafka import TopicPartition

        batch = await self.consumer.getmany(timeout_ms=int(self.poll_s * 1000), max_records=5000)
        now = time.monotonic()
        ready: dict[int, list[list[Span]]] = {p: [] for p in self.parts}
        for tp, msgs in batch.items():
            part = self.parts[tp.partition]
            for m in msgs:
                try:
                    rec = json.loads(m.value)
                except (TypeError, ValueError):
                    log.warning("skipping a record that is not JSON at %s[%d]@%d", tp.topic, tp.partition, m.offset)
                    continue
                if rec.get("schema_version", 1) > OTLP_SPANS_SCHEMA_VERSION:  # stop here; restart after upgrading
                    raise RuntimeError(f"{tp.topic}[{tp.partition}]@{m.offset} has schema_version "
                                       f"{rec['schema_version']}, newer than this assembler; upgrade alignloop")
                ready[tp.partition] += part.feed(m.offset, rec, now)
        for p, part in self.parts.items():
            part.advance(await self.consumer.position(TopicPartition(self.topic, p)))
            groups = ready[p] + part.due(now)
            if not groups and part.commit_offset() <= self.committed[p]:
                continue
            try:
                await self._publish(p, groups)
            except Exception as exc:
                from aiokafka.errors import ProducerFenced

                if isinstance(exc, ProducerFenced):
                    raise  # another assembler owns this partition now
                log.warning("publishing partition %d failed (%s); rebuilding it from the committed offset", p, exc)
                try:
                    await self.producers[p].stop()
                except Exception:
                    pass
                self.producers[p] = await self._producer(p)
                await self._rebuild(p)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            while stop is None or not stop.is_set():
                await self.step()
        finally:
            await self.stop()


def serve(settings: "Settings", *, settle_s: float, partitions: list[int] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(Assembler(settings, settle_s=settle_s, partitions=partitions).run())
