"""One replay process: re-read its partitions' windows by assignment (no consumer group), run the live spine's
``Pipeline`` over them in large batches, and land the outcomes in the replay namespace.

Three idempotent sinks per replay (``traces``, ``dlq``, the ``records`` ledger), each with an app transaction per
source partition (version = last offset), as the live sink: every record advances all three (a row or ``None``),
so after ``kill -9`` the process resumes at the lowest committed offset and each sink skips what it already holds
— the same rows, none twice.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.kafka import aiokafka_client_kwargs
from connectors.replay_store import LiveTraces, replay_sink
from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.tables import REPLAY_DLQ_TABLE, REPLAY_RECORDS_TABLE, TRACES_TABLE
from streams.encoding import rejudged_row, summarize, to_row
from streams.pipeline import Pipeline
from streams.replay.rows import dlq_row, ledger_row, scrubbed_from_row, value_hash

if TYPE_CHECKING:
    from connectors.delta_sink import DeltaSink
    from schemas.settings import Settings
    from streams.configs import AreaConfigs

log = logging.getLogger("alignloop.replay")
# (table, writer) of a replay's sinks: the traces, the dead letters, the ledger (``connectors.replay_store``)
SINKS = ((TRACES_TABLE, "traces"), (REPLAY_DLQ_TABLE, "dlq"), (REPLAY_RECORDS_TABLE, "records"))


@dataclass
class Task:
    """What one process replays: the topic, its partitions' inclusive offset ranges, the time filter."""

    name: str
    topic: str
    ranges: dict[int, tuple[int, int]]
    from_ms: int | None = None
    to_ms: int | None = None
    batch: int = 5000
    reuse: bool = True  # judge the live rows' scrubbed text where it was scrubbed under this version (--rescrub: no)


@dataclass
class Counts:
    read: int = 0
    landed: int = 0
    invalid: int = 0
    filtered: int = 0
    skipped: int = 0  # already landed by an earlier (crashed) run of this replay
    reused: int = 0  # landed from the live row's scrubbed text, not scrubbed again
    by_partition: dict[int, int] = field(default_factory=dict)


class ReplayWriter:
    """The step and the three sinks of one replay. ``prepare(records)`` runs the step over one batch and builds its
    rows (the caller's thread); ``commit(batch)`` lands them, one Delta commit per sink; ``submit(records)`` does
    both with the commit on a background thread, so batch k's Parquet encoding and commits (Rust, outside the GIL)
    overlap batch k+1's step; at most one batch is in flight, and ``wait()`` lands it. ``write`` = both, in line.

    Each sink skips what it already holds: the offsets each sink had committed for a partition are read once, when
    the partition is first seen (``resume_at``), and a record lands in a sink only above them. Within a run this
    process is the only writer of its partitions, and the consumer reads each offset once, so no later check is
    needed (and the committer thread is the only one to touch the sinks' tables)."""

    def __init__(self, settings: "Settings", configs: "AreaConfigs", task: Task):
        self.task = task
        self.pipeline = Pipeline.from_settings(settings, configs)
        self.traces, self.dlq, self.ledger = (replay_sink(settings, task.name, t, w) for t, w in SINKS)
        self.live = (LiveTraces(settings.table_uri(TRACES_TABLE), task.topic, self.pipeline.scrub_version,
                                settings.lake_storage_options or None)
                     if task.reuse and self.pipeline.scrub_version else None)
        self.counts = Counts()
        self._floors: dict[int, tuple[int, int, int]] = {}  # partition -> each sink's committed offset at start
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.waited_s = 0.0  # how long the last ``wait`` blocked on the committer

    @property
    def sinks(self) -> tuple["DeltaSink", ...]:
        return (self.traces, self.dlq, self.ledger)

    def _floor(self, partition: int) -> tuple[int, int, int]:
        got = self._floors.get(partition)
        if got is None:
            self.wait()  # the committer thread owns the tables while a batch is in flight
            t, d, led = (s.committed_offset(self.task.topic, partition) for s in self.sinks)
            got = self._floors[partition] = (t, d, led)
        return got

    def resume_at(self, partition: int) -> int:
        """First offset of ``partition`` not yet in every sink."""
        return max(self.task.ranges[partition][0], min(self._floor(partition)) + 1)

    def _in_window(self, r: Record) -> bool:
        t, lo, hi = r.timestamp_ms, self.task.from_ms, self.task.to_ms
        return t is None or ((lo is None or t >= lo) and (hi is None or t < hi))

    def _reusable(self, records: list[Record], digests: dict[tuple[int, int], str]) -> dict[tuple[int, int], dict]:
        """{(partition, offset): live row} of the records whose live row was made from the same bytes
        (``src_sha256``) under this scrubber's version: those need no scrubbing, only judging."""
        if self.live is None:
            return {}
        spans: dict[int, tuple[int, int]] = {}
        for r in records:
            first, last = spans.get(r.partition, (r.offset, r.offset))
            spans[r.partition] = (min(first, r.offset), max(last, r.offset))
        return {key: row for key, row in self.live.rows(spans).items() if row["src_sha256"] == digests.get(key)}

    def prepare(self, records: list[Record]) -> "_Prepared":
        """The step over the batch's records not yet landed everywhere, and every sink's rows and offsets. Records
        whose live row can be reused are only judged (``Pipeline.judge_batch``); the rest go through the whole
        step (``Pipeline.process_batch``): the same outcomes either way."""
        floor = self._floor
        fresh = [r for r in records if r.offset > min(floor(r.partition))]
        c = self.counts
        c.skipped += len(records) - len(fresh)
        digests = {(r.partition, r.offset): value_hash(r.value) for r in fresh}
        keep = [r for r in fresh if self._in_window(r)]
        reused: dict[tuple[int, int], dict] = {}
        clean: dict[tuple[int, int], tuple[Any, list]] = {}
        for key, row in self._reusable(keep, digests).items():
            try:
                clean[key] = scrubbed_from_row(row)
            except Exception as exc:  # a row the contract no longer accepts: scrub its record again
                log.warning("live row %s:%s not reused (%s): scrubbing it again", *key, exc)
            else:
                reused[key] = row
        again = [r for r in keep if (r.partition, r.offset) not in reused]
        by_offset = dict(zip([(r.partition, r.offset) for r in again], self.pipeline.process_batch(again)))
        if reused:
            known = [r for r in keep if (r.partition, r.offset) in reused]
            by_offset.update(zip([(r.partition, r.offset) for r in known],
                                 self.pipeline.judge_batch(known, [clean[(r.partition, r.offset)] for r in known])))
        batch = _Prepared()
        traces, dlq, ledger = batch.rows
        offsets = batch.offsets
        for r in fresh:
            ft, fd, fl = floor(r.partition)
            off, part = r.offset, r.partition
            digest = digests[(part, off)]
            out = by_offset.get((part, off))
            c.read += 1
            c.by_partition[part] = c.by_partition.get(part, 0) + 1
            reuse = None
            if out is None:
                c.filtered += 1
                status, trace, row, dead = "filtered", None, None, None
            elif out.__class__ is DeadLetter:
                c.invalid += 1
                status, trace, row, dead = "invalid", None, None, dlq_row(out, digest)
            else:
                c.landed += 1
                live = reused.get((part, off))
                reuse = live is not None
                c.reused += reuse
                status, trace, dead = "landed", out.trace, None
                if off <= ft:
                    row = None
                elif reuse:
                    row = rejudged_row(live, out, summarize(out.verdicts))  # = to_row(out), the text copied
                else:
                    row = to_row(out, summarize(out.verdicts))
            key = (r.topic, part)
            if off > ft:  # every sink advances past every record, with a row or without
                if row is not None:
                    traces.append(row)
                _advance(offsets[0], key, off)
            if off > fd:
                if dead is not None:
                    dlq.append(dead)
                _advance(offsets[1], key, off)
            if off > fl:
                ledger.append(ledger_row(r, digest, status, trace, reuse))
                _advance(offsets[2], key, off)
        return batch

    def commit(self, batch: "_Prepared") -> None:
        """Land a prepared batch: the traces, the dead letters, then the ledger (last: a crash before it only repeats
        work the others skip), each one Delta commit advancing its partitions' app transactions."""
        for sink, rows, offsets in zip(self.sinks, batch.rows, batch.offsets):
            if offsets:
                sink.write(rows, offsets)

    def write(self, records: list[Record]) -> None:
        """Land one batch, in line."""
        self.wait()
        self.commit(self.prepare(records))

    def submit(self, records: list[Record]) -> None:
        """``prepare`` here, then ``commit`` on the committer thread once the batch before has landed."""
        batch = self.prepare(records)
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="replay-commit")
        self._pending = self._pool.submit(self.commit, batch)

    def wait(self) -> None:
        """Block until the batch in flight (if any) has landed; its commit's error, if any, is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            started = time.perf_counter()
            try:
                pending.result()
            finally:
                self.waited_s = time.perf_counter() - started

    def close(self) -> None:
        self.wait()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _advance(offsets: dict[tuple[str, int], int], key: tuple[str, int], offset: int) -> None:
    if offset > offsets.get(key, -1):
        offsets[key] = offset


@dataclass
class _Prepared:
    """One batch's rows per sink (traces, dlq, ledger) and the last offset per source partition each advances."""

    rows: tuple[list[dict[str, Any]], ...] = field(default_factory=lambda: ([], [], []))
    offsets: tuple[dict[tuple[str, int], int], ...] = field(default_factory=lambda: ({}, {}, {}))


async def replay_partitions(settings: "Settings", configs: "AreaConfigs", task: Task,
                            on_batch: Any = None, on_ready: Any = None) -> Counts:
    """Replay ``task``'s partitions to the end of their ranges; returns what this process read and landed.

    ``on_ready()`` is called once the step is built, the sinks have told where to resume and the consumer holds its
    partitions (the replay's counterpart of a settled live worker); ``on_batch(n)`` after each batch is handed to
    the committer. Batches are as large as ``task.batch`` (records per step and per commit): while one batch's step
    runs on a thread, the event loop keeps fetching the next (the consumer prefetches up to 32 MiB a partition)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    writer = ReplayWriter(settings, configs, task)
    todo = {TopicPartition(task.topic, p): end for p, (_, end) in task.ranges.items()}
    starts = {tp: writer.resume_at(tp.partition) for tp in todo}
    todo = {tp: end for tp, end in todo.items() if starts[tp] <= end}
    if not todo:
        if on_ready is not None:
            on_ready()
        return writer.counts
    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=32 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    # Cyclic GC once per batch, not during one: a batch's records, traces and rows all live until it is handed off,
    # so every automatic collection during its step re-scanned them (a fifth of the step's CPU at 5,000 records,
    # measured); after the hand-off little is alive, and one collection costs a few ms.
    gc_was_enabled = gc.isenabled()
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp])
        if on_ready is not None:
            on_ready()
        parent = os.getppid()
        clock = time.perf_counter
        gc.disable()  # collected once per batch instead (``gc_was_enabled`` above)
        while todo:
            asked = clock()
            got = await consumer.getmany(*todo, timeout_ms=1000, max_records=task.batch)
            batch = [Record(tp.topic, tp.partition, m.offset, m.key, m.value, m.timestamp)
                     for tp, msgs in got.items() for m in msgs if m.offset <= todo[tp]]
            if batch:
                fetched = clock()
                await asyncio.to_thread(writer.submit, batch)
                log.info("batch of %d: fetched in %.2f s, step and hand-off %.2f s (commit wait %.2f s)",
                         len(batch), fetched - asked, clock() - fetched, writer.waited_s)
                gc.collect()
                if on_batch is not None:
                    on_batch(len(batch))
            for tp in list(todo):  # past the end (transaction markers and compacted offsets included): done
                if await consumer.position(tp) > todo[tp]:
                    del todo[tp]
                    consumer.pause(tp)
            if os.getppid() != parent:  # the replay command died (kill -9): stop too, it resumes on re-run
                raise SystemExit("the replay's parent process is gone")
        await asyncio.to_thread(writer.wait)  # the last batch lands before the process reports
    finally:
        if gc_was_enabled:
            gc.enable()
        await consumer.stop()
        writer.close()
    return writer.counts
