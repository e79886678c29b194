"""A small group-less consumer of ``feedback.labels`` for the calibration join.

Every worker reads every label partition (no consumer group): confidences live in the worker that judged the
trace, and labels are keyed differently from traces, so only reading all of them lets each worker join the
labels of its own traces. Positions come from the drift state file; a fresh worker starts at the end (its
confidence store is empty, older labels could not join anyway).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from connectors.kafka import aiokafka_client_kwargs, end_offsets

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger("alignloop.drift")


async def follow_labels(settings: "Settings", topic: str, positions: dict[int, int],
                        handle: Callable[[list[tuple[int, int, bytes, bytes | None]]], Awaitable[list[Any]]],
                        stop: asyncio.Event, batch: int = 500, unknown: str = "latest") -> None:
    """Follow every partition of ``topic`` from ``positions`` (+1); a partition without one starts at the end
    (``unknown="latest"``) or the beginning (``"earliest"``: the erasure commands, which a restored state may
    not have seen yet)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), enable_auto_commit=False, group_id=None,
                                auto_offset_reset="latest")
    await consumer.start()
    try:
        parts: set[int] = set()
        for _ in range(50):  # the topic may not exist yet
            # (a group-less consumer's own metadata never lists it: this used to end the task at start-up)
            parts = set(await end_offsets(settings, topic))
            if parts:
                break
            await asyncio.sleep(0.2)
        if not parts:
            log.warning("topic %s not found; the drift monitor does not follow it", topic)
            return
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in positions:
                consumer.seek(tp, positions[tp.partition] + 1)
            elif unknown == "earliest":
                await consumer.seek_to_beginning(tp)
            else:
                await consumer.seek_to_end(tp)
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=500, max_records=batch)
            # (partition, offset, value, key); empty values are tombstones, not labels
            records = [(m.partition, m.offset, m.value, m.key) for msgs in got.values() for m in msgs if m.value]
            if records:
                futures = await handle(records)
                if futures:
                    await asyncio.gather(*futures)
    finally:
        await consumer.stop()
