"""One replay process: re-read its partitions' windows by assignment (no consumer group), run the live spine's
``Pipeline`` over them in large batches, and land the outcomes in the replay namespace.

Three idempotent sinks per replay (``traces``, ``dlq``, the ``records`` ledger), each with an app transaction per
source partition (version = last offset), as the live sink: every record advances all three (a row or ``None``),
so after ``kill -9`` the process resumes at the lowest committed offset and each sink skips what it already holds
— the same rows, none twice.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.kafka import aiokafka_client_kwargs
from connectors.replay_store import replay_sink
from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.tables import REPLAY_DLQ_TABLE, REPLAY_RECORDS_TABLE, TRACES_TABLE
from streams.encoding import summarize, to_row
from streams.pipeline import Pipeline
from streams.replay.rows import dlq_row, ledger_row, value_hash

if TYPE_CHECKING:
    from connectors.delta_sink import DeltaSink
    from schemas.settings import Settings
    from streams.configs import AreaConfigs

log = logging.getLogger("alignloop.replay")


@dataclass
class Task:
    """What one process replays: the topic, its partitions' inclusive offset ranges, the time filter."""

    name: str
    topic: str
    ranges: dict[int, tuple[int, int]]
    from_ms: int | None = None
    to_ms: int | None = None
    batch: int = 5000


@dataclass
class Counts:
    read: int = 0
    landed: int = 0
    invalid: int = 0
    filtered: int = 0
    skipped: int = 0  # already landed by an earlier (crashed) run of this replay
    by_partition: dict[int, int] = field(default_factory=dict)


class ReplayWriter:
    """The step and the three sinks of one replay: ``write(records)`` lands one batch, idempotently."""

    def __init__(self, settings: "Settings", configs: "AreaConfigs", task: Task):
        self.task = task
        self.pipeline = Pipeline.from_settings(settings, configs)
        self.traces = replay_sink(settings, task.name, TRACES_TABLE, "traces")
        self.dlq = replay_sink(settings, task.name, REPLAY_DLQ_TABLE, "dlq")
        self.ledger = replay_sink(settings, task.name, REPLAY_RECORDS_TABLE, "records")
        self.counts = Counts()

    @property
    def sinks(self) -> tuple["DeltaSink", ...]:
        return (self.traces, self.dlq, self.ledger)

    def resume_at(self, partition: int) -> int:
        """First offset of ``partition`` not yet in every sink."""
        start = self.task.ranges[partition][0]
        return max(start, min(s.committed_offset(self.task.topic, partition) for s in self.sinks) + 1)

    def _in_window(self, r: Record) -> bool:
        t, lo, hi = r.timestamp_ms, self.task.from_ms, self.task.to_ms
        return t is None or ((lo is None or t >= lo) and (hi is None or t < hi))

    def write(self, records: list[Record]) -> None:
        fresh = [r for r in records if any(s.is_new(r) for s in self.sinks)]
        self.counts.skipped += len(records) - len(fresh)
        keep = [r for r in fresh if self._in_window(r)]
        outcomes = dict(zip(((r.partition, r.offset) for r in keep), self.pipeline.process_batch(keep))) if keep else {}
        c = self.counts
        for r in fresh:
            digest = value_hash(r.value)
            out = outcomes.get((r.partition, r.offset))
            c.read += 1
            c.by_partition[r.partition] = c.by_partition.get(r.partition, 0) + 1
            if out is None:
                c.filtered += 1
                self.traces.add(None, r)
                self.dlq.add(None, r)
                self.ledger.add(ledger_row(r, digest, "filtered"), r)
            elif out.__class__ is DeadLetter:
                c.invalid += 1
                self.traces.add(None, r)
                self.dlq.add(dlq_row(out, digest), r)
                self.ledger.add(ledger_row(r, digest, "invalid"), r)
            else:
                c.landed += 1
                self.traces.add(to_row(out, summarize(out.verdicts)), r)
                self.dlq.add(None, r)
                self.ledger.add(ledger_row(r, digest, "landed", out.trace), r)
        for sink in self.sinks:  # the ledger last: a crash before it only repeats work the others skip
            sink.flush()


async def replay_partitions(settings: "Settings", configs: "AreaConfigs", task: Task,
                            on_batch: Any = None) -> Counts:
    """Replay ``task``'s partitions to the end of their ranges; returns what this process read and landed."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    writer = ReplayWriter(settings, configs, task)
    todo = {TopicPartition(task.topic, p): end for p, (_, end) in task.ranges.items()}
    starts = {tp: writer.resume_at(tp.partition) for tp in todo}
    todo = {tp: end for tp, end in todo.items() if starts[tp] <= end}
    if not todo:
        return writer.counts
    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=32 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp])
        parent = os.getppid()
        while todo:
            got = await consumer.getmany(*todo, timeout_ms=1000, max_records=task.batch)
            batch = [Record(tp.topic, tp.partition, m.offset, m.key, m.value, m.timestamp)
                     for tp, msgs in got.items() for m in msgs if m.offset <= todo[tp]]
            if batch:
                await asyncio.to_thread(writer.write, batch)
                if on_batch is not None:
                    on_batch(len(batch))
            for tp in list(todo):  # past the end (transaction markers and compacted offsets included): done
                if await consumer.position(tp) > todo[tp]:
                    del todo[tp]
                    consumer.pause(tp)
            if os.getppid() != parent:  # the replay command died (kill -9): stop too, it resumes on re-run
                raise SystemExit("the replay's parent process is gone")
    finally:
        await consumer.stop()
    return writer.counts
