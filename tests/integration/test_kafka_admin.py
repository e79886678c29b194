"""Admin helpers against the real broker: consumer group membership (the pipeline bench waits on it)."""
from __future__ import annotations

import asyncio

from connectors.kafka import aiokafka_client_kwargs, create_topics, group_members
from schemas.topics import TRACES


def test_group_members_reports_each_member_once_it_holds_partitions(make_settings) -> None:
    from aiokafka import AIOKafkaConsumer

    s = make_settings(partitions=2)
    asyncio.run(create_topics(s, names=[TRACES]))

    async def scenario() -> tuple[list[int], list[int]]:
        group = f"{s.app_id}-g"
        consumers = [AIOKafkaConsumer(s.topic(TRACES), group_id=group, **aiokafka_client_kwargs(s))
                     for _ in range(2)]
        for c in consumers:
            await c.start()
        try:
            for _ in range(60):  # poll until the group has handed both members a partition each
                await asyncio.gather(*(c.getmany(timeout_ms=200) for c in consumers))
                if all(c.assignment() for c in consumers):
                    break
            members = await group_members(s, group)
        finally:
            for c in consumers:
                await c.stop()
        return members, await group_members(s, f"{s.app_id}-nobody")

    members, unknown = asyncio.run(scenario())
    assert len(members) == 2 and all(m > 0 for m in members)
    assert unknown == []
