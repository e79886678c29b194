"""Erasure on the broker: find a conversation's records on every topic, delete them where that is safe, and say
when the last copy expires where it is not.

Kafka cannot delete one record from a ``delete``-policy topic; it can only move a partition's start past an offset
(DeleteRecords). So for each partition holding the conversation, its records up to the last match are deleted once
every consumer group with a committed offset on that partition has committed past the match (nothing a consumer
still needs is lost; the rows are in Delta). A group behind it blocks: the partition is reported ``pending`` with
the groups and the time the broker's retention removes the record anyway (its timestamp + ``retention.ms`` +
``segment.ms``: the broker deletes whole closed segments). A consumer that reads without committing offsets is not
seen and must keep up by other means. The audit log is never truncated (it must not hold identifiers: if it does,
that is reported as a leak). Compacted topics are keyed by adapter, agent or monitor, never by conversation: a
match there is reported (and, if its key is the conversation's, tombstoned).
"""
from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from connectors.kafka import aiokafka_client_kwargs, producer
from schemas.topics import AUDIT, DAY_MS, TOPICS

if TYPE_CHECKING:
    from schemas.settings import Settings

DEFAULT_SEGMENT_MS = 7 * DAY_MS  # Kafka's log.roll.ms default: a segment is deleted only once it is closed


@dataclass
class PartitionErasure:
    topic: str
    partition: int
    records: int = 0
    last_offset: int = -1
    last_timestamp_ms: int | None = None
    action: str = "pending"           # deleted | pending | tombstoned | compacted_kept | leak (the audit log)
    deleted_before: int | None = None  # the partition's new start offset
    blocking_groups: list[str] = field(default_factory=list)
    expires_by: str | None = None      # when retention removes the last copy (None: kept forever)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def read_retained(settings: "Settings", topic: str) -> list[Any]:
    """Every record the broker still holds in ``topic`` (physical name), partitions whose start offset reached
    their end (all deleted) skipped at once rather than waited on."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    out: list[Any] = []
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return out
        starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        todo = {tp: ends[tp] for tp in tps if ends[tp] > starts[tp]}
        if not todo:
            return out
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while todo and loop.time() < deadline:  # transaction markers take offsets: stop at the position, not a count
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            for tp, msgs in batch.items():
                out.extend(msgs)
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
            if batch:
                deadline = loop.time() + 10.0
        return out
    finally:
        await consumer.stop()


def _blob(m: Any) -> bytes:
    return b"".join([m.key or b"", m.value or b"", *(v or b"" for _, v in (m.headers or ()))])


async def find_records(settings: "Settings", needles: list[bytes]) -> dict[tuple[str, int], PartitionErasure]:
    """Every partition of every pipeline topic with a record whose key, value or headers contain a needle."""
    found: dict[tuple[str, int], PartitionErasure] = {}
    for name in TOPICS:
        for m in await read_retained(settings, settings.topic(name)):
            blob = _blob(m)
            if any(n in blob for n in needles):
                p = found.setdefault((name, m.partition), PartitionErasure(name, m.partition))
                p.records += 1
                if m.offset > p.last_offset:
                    p.last_offset, p.last_timestamp_ms = m.offset, m.timestamp
    return found


async def committed(settings: "Settings", topics: set[str]) -> dict[tuple[str, int], dict[str, int]]:
    """{(physical topic, partition): {group: committed offset}} over every consumer group of the cluster."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    out: dict[tuple[str, int], dict[str, int]] = {}
    try:
        for group, *_ in await admin.list_consumer_groups():
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                if tp.topic in topics and meta.offset >= 0:
                    out.setdefault((tp.topic, tp.partition), {})[group] = meta.offset
    finally:
        await admin.close()
    return out


def _expiry(name: str, ts_ms: int | None) -> str | None:
    spec = TOPICS[name]
    if spec.compacted or spec.retention_ms < 0 or ts_ms is None:
        return None
    segment = int(spec.configs.get("segment.ms", DEFAULT_SEGMENT_MS))
    return datetime.fromtimestamp((ts_ms + spec.retention_ms + segment) / 1000, timezone.utc).isoformat()


async def delete_records(settings: "Settings", cuts: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings), request_timeout_ms=30000)
    await admin.start()
    try:
        res = await admin.delete_records({TopicPartition(settings.topic(t), p): RecordsToDelete(off)
                                          for (t, p), off in cuts.items()})
    finally:
        await admin.close()
    return {(t, p): res[TopicPartition(settings.topic(t), p)] for (t, p) in cuts}


async def _tombstone(settings: "Settings", hits: list[PartitionErasure], needles: list[bytes]) -> None:
    """A null value for every compacted record keyed by the conversation (its key contains a needle)."""
    async with producer(settings) as prod:
        for h in hits:
            for m in await read_retained(settings, settings.topic(h.topic)):
                if m.partition == h.partition and m.key and any(n in m.key for n in needles):
                    await prod.send_and_wait(settings.topic(h.topic), key=m.key, value=None, partition=m.partition)
                    h.action = "tombstoned"


async def erase_records(settings: "Settings", needles: list[bytes], *, truncate: bool = True,
                        wait_s: float = 10.0) -> list[PartitionErasure]:
    """Find, then delete (when every group is past) or report every partition holding a needle (module doc).
    Waits up to ``wait_s`` for lagging groups to commit past the records before calling them pending."""
    found = await find_records(settings, needles)
    physical = {settings.topic(t) for t, _ in found}
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        offsets = await committed(settings, physical)
        for (name, part), h in found.items():
            h.expires_by = _expiry(name, h.last_timestamp_ms)
            h.blocking_groups = sorted(g for g, off in offsets.get((settings.topic(name), part), {}).items()
                                       if off <= h.last_offset)
        if not any(h.blocking_groups for h in found.values()) or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.5)
    cuts = {}
    for key, h in found.items():
        if h.topic == AUDIT:
            h.action = "leak"  # never truncate the audit trail; an identifier in it is a bug to report
        elif TOPICS[h.topic].compacted:
            h.action = "compacted_kept"  # e.g. drift.state: a monitor snapshot, rewritten by the monitor itself
        elif truncate and not h.blocking_groups:
            cuts[key] = h.last_offset + 1
    if cuts:
        for key, start in (await delete_records(settings, cuts)).items():
            found[key].action, found[key].deleted_before = "deleted", start
    compacted = [h for h in found.values() if TOPICS[h.topic].compacted]
    if compacted and truncate:
        await _tombstone(settings, compacted, needles)
    return sorted(found.values(), key=lambda h: (h.topic, h.partition))
