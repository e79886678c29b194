"""What the broker holds of a topic, per partition, for resolving a replay window: log start, high-water mark,
the first record's timestamp, and offsets-for-times. A consumer with no group (``group_id=None``, ``assign``):
asking never joins or disturbs the live workers' consumer group."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from connectors.kafka import aiokafka_client_kwargs

if TYPE_CHECKING:
    from schemas.settings import Settings


async def probe_topic(settings: "Settings", topic: str, times_ms: tuple[int | None, int | None] = (None, None),
                      *, timeout_s: float = 10.0) -> dict[int, dict[str, Any]]:
    """{partition: {log_start, high_water, first_ts_ms, from_offset, to_offset}}; the offsets for the two times
    are None past the end (aiokafka's answer there) or when the time is None. {} for an unknown topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return {}
        starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        out = {tp.partition: {"log_start": starts[tp], "high_water": ends[tp], "first_ts_ms": None,
                              "from_offset": None, "to_offset": None} for tp in tps}
        for key, ms in zip(("from_offset", "to_offset"), times_ms):
            if ms is not None:
                for tp, got in (await consumer.offsets_for_times({tp: ms for tp in tps})).items():
                    out[tp.partition][key] = None if got is None else got.offset
        held = [tp for tp in tps if ends[tp] > starts[tp]]
        if held:
            consumer.assign(held)
            for tp in held:
                consumer.seek(tp, starts[tp])
            missing = set(held)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while missing and asyncio.get_running_loop().time() < deadline:
                for tp, msgs in (await consumer.getmany(*missing, timeout_ms=500, max_records=1)).items():
                    if msgs:
                        out[tp.partition]["first_ts_ms"] = msgs[0].timestamp
                        missing.discard(tp)
                        consumer.pause(tp)
        return out
    finally:
        await consumer.stop()
