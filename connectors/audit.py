"""Append to the audit trail (``audit.log``) from any process, one writer at a time, and mirror it to Delta.

The chain is only as good as its order: two processes that both read the tail and append would fork it. Every
writer therefore uses the SAME Kafka transactional id. Starting a transactional producer fences every older one
(Kafka bumps the producer epoch), so a writer that holds the tail it read and commits without being fenced knows
nobody appended in between; a fenced writer starts again, reads the new tail and re-chains its entry. A writer
keeps its producer and its tail between appends, so a process that appends often pays one commit per entry; two
busy processes pay a re-read each time they alternate.

The topic (one partition, kept forever) is the record. The Delta table ``audit`` mirrors it, one row per entry with
the entry's offset as the app transaction (a lost mirror write is caught up by the next append or ``mirror``).

Nothing identifying a person belongs in an entry: erasures record a keyed hash, not the conversation id.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.kafka import aiokafka_client_kwargs, discard_producer, start_transactional
from schemas.audit import AuditEntry, verify_chain
from schemas.tables import AUDIT_TABLE
from schemas.topics import AUDIT

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 8


class AuditError(RuntimeError):
    """The audit trail could not be written or read (broker down, or a malformed entry on the topic)."""


class AuditTrail:
    """``await trail.append(actor=..., action=..., subject=..., details=...)`` → the committed `AuditEntry`."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.topic = settings.topic(AUDIT)
        self._producer: Any = None
        self._tail: AuditEntry | None = None
        self._tail_known = False
        self._lock = asyncio.Lock()

    async def append(self, *, actor: str, action: str, subject: str,
                     details: dict[str, Any] | None = None) -> AuditEntry:
        from aiokafka.errors import KafkaError

        async with self._lock:
            for attempt in range(_MAX_ATTEMPTS):
                entry: AuditEntry | None = None
                try:
                    await self._ensure_started()
                    entry = AuditEntry.after(self._tail, actor=actor, action=action, subject=subject,
                                             details=details)
                    offset = await self._commit(entry)
                except KafkaError as exc:  # fenced by another writer, or an unknown outcome: re-read and retry
                    log.info("audit append attempt %d: %s; re-reading the tail", attempt + 1, exc)
                    await self._reset()
                    landed = await self._read_tail() if entry is not None else None
                    if landed is None or landed[0].hash != entry.hash:
                        continue
                    offset = landed[1]  # the commit went through before the error
                self._tail = entry
                await self._mirror_one(entry, offset)
                return entry
        raise AuditError(f"could not append to {self.topic} after {_MAX_ATTEMPTS} attempts")

    async def close(self) -> None:
        await self._reset()

    async def _ensure_started(self) -> None:
        if self._producer is not None:
            return
        # init_transactions: fences every other writer of this chain
        self._producer = await start_transactional(self.settings, f"alignloop-audit:{self.topic}")
        tail = await self._read_tail()
        self._tail = tail[0] if tail else None

    async def _commit(self, entry: AuditEntry) -> int:
        value = entry.model_dump_json().encode()
        async with self._producer.transaction():
            meta = await self._producer.send_and_wait(self.topic, value=value, key=b"audit", partition=0)
        return meta.offset

    async def _reset(self) -> None:
        prod, self._producer = self._producer, None
        await discard_producer(prod)

    async def _read_tail(self) -> tuple[AuditEntry, int] | None:
        entries = await read_entries(self.settings, last=1)
        return entries[-1] if entries else None

    async def _mirror_one(self, entry: AuditEntry, offset: int) -> None:
        try:
            await asyncio.to_thread(_mirror_rows, self.settings, self.topic, [(entry, offset)])
        except Exception as exc:  # the topic holds the entry; `mirror` catches the table up later
            log.warning("audit entry %d is on %s but not yet in Delta: %s", entry.seq, self.topic, exc)


async def read_entries(settings: "Settings", *, last: int | None = None,
                       from_offset: int = 0) -> list[tuple[AuditEntry, int]]:
    """Committed entries of the chain with their offsets, in order (``last``: only the last N)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topic(AUDIT)
    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed", auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]  # read_committed: the last stable offset
        start = from_offset
        window = 16
        while True:
            if last is not None:
                start = max(from_offset, end - window)
            found = await _read_range(consumer, tp, start, end)
            if last is None or len(found) >= last or start <= from_offset:
                return found[-last:] if last else found
            window *= 4  # markers and aborted attempts sit between entries: look further back
    finally:
        await consumer.stop()


async def _read_range(consumer: Any, tp: Any, start: int, end: int) -> list[tuple[AuditEntry, int]]:
    if end <= start:
        return []
    consumer.seek(tp, start)
    out: list[tuple[AuditEntry, int]] = []
    idle = 0
    while await consumer.position(tp) < end and idle < 10:  # idle: only control markers were left to read
        batch = await consumer.getmany(tp, timeout_ms=500)
        idle = 0 if batch.get(tp) else idle + 1
        for msg in batch.get(tp, []):
            if msg.offset >= end:
                break
            try:
                out.append((AuditEntry.model_validate_json(msg.value), msg.offset))
            except ValueError as exc:
                raise AuditError(f"{tp.topic} offset {msg.offset} is not an audit entry: {exc}") from None
    return out


def _mirror_rows(settings: "Settings", topic: str, entries: list[tuple[AuditEntry, int]]) -> int:
    from connectors.delta_sink import table_sink

    sink = table_sink(settings, AUDIT_TABLE, "audit")
    for entry, offset in entries:
        sink.add(_row(entry, offset), _Src(topic, 0, offset))
    return sink.flush()


@dataclass(frozen=True)
class _Src:
    topic: str
    partition: int
    offset: int


def _row(entry: AuditEntry, offset: int) -> dict[str, Any]:
    return {"seq": entry.seq, "ts": entry.ts, "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "prev_hash": entry.prev_hash, "hash": entry.hash, "src_offset": offset,
            "details_json": json.dumps(entry.details, sort_keys=True, ensure_ascii=False),
            "date": entry.ts.date().isoformat()}


async def mirror(settings: "Settings") -> int:
    """Land every entry the Delta mirror lacks; returns rows written."""
    entries = await read_entries(settings)
    return await asyncio.to_thread(_mirror_rows, settings, settings.topic(AUDIT), entries)


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    broken_at: int | None          # seq of the first entry that breaks the chain on the topic
    table_rows: int
    table_mismatch: int | None     # seq of the first table row that differs from the topic, if any

    @property
    def ok(self) -> bool:
        return self.broken_at is None and self.table_mismatch is None

    def line(self) -> str:
        if self.broken_at is not None:
            return f"audit chain BROKEN at seq {self.broken_at} ({self.entries} entries on the topic)"
        if self.table_mismatch is not None:
            return f"audit chain intact ({self.entries} entries) but the Delta mirror differs at seq " \
                   f"{self.table_mismatch} ({self.table_rows} rows)"
        return f"audit chain intact: {self.entries} entries, Delta mirror {self.table_rows} rows agree"


async def verify(settings: "Settings") -> VerifyReport:
    """Check the hash chain on the topic and that the Delta mirror holds the same entries (a prefix of them)."""
    from connectors.delta_sink import read_table

    entries = [e for e, _ in await read_entries(settings)]
    broken = verify_chain(entries)
    try:
        rows = sorted(read_table(settings.table_uri(AUDIT_TABLE), columns=["seq", "hash"]).to_pylist(),
                      key=lambda r: r["seq"])
    except Exception:  # no mirror yet
        rows = []
    by_seq = {e.seq: e.hash for e in entries}
    mismatch = next((r["seq"] for r in rows if by_seq.get(r["seq"]) != r["hash"]), None)
    if mismatch is None and len({r["seq"] for r in rows}) != len(rows):
        mismatch = next(r["seq"] for a, r in zip(rows, rows[1:]) if a["seq"] == r["seq"])
    return VerifyReport(len(entries), broken, len(rows), mismatch)


def append_sync(settings: "Settings", *, actor: str, action: str, subject: str,
                details: dict[str, Any] | None = None) -> AuditEntry:
    """One append from synchronous code (a CLI command)."""
    async def run() -> AuditEntry:
        trail = AuditTrail(settings)
        try:
            return await trail.append(actor=actor, action=action, subject=subject, details=details)
        finally:
            await trail.close()
    return asyncio.run(run())
