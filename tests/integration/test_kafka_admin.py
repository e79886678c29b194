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


def test_a_discarded_bench_drain_takes_its_own_topics_and_lake_only(make_settings, tmp_path) -> None:
    """bench pipeline discards each drain as it ends (unless --keep): its topics and lake, none of another drain's
    whose name shares a prefix with it."""
    import time

    from aiokafka.admin import AIOKafkaAdminClient

    from alignloop.bench.pipeline import _Run

    base = make_settings()
    tag = base.app_id[-8:]
    runs = [_Run(base, tag, name, tmp_path / "work", 1, {}) for name in ("full-1", "full-10")]
    for r in runs:
        asyncio.run(create_topics(r.s, names=[TRACES]))
        (r.dir / "lake").mkdir(parents=True)

    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(base))
        await admin.start()
        try:
            return {t for t in await admin.list_topics() if t.startswith(f"bench-{tag}.")}
        finally:
            await admin.close()

    assert asyncio.run(topics()) == {r.s.topic(TRACES) for r in runs}
    runs[0].discard()
    deadline = time.monotonic() + 30
    while asyncio.run(topics()) != {runs[1].s.topic(TRACES)} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert asyncio.run(topics()) == {runs[1].s.topic(TRACES)}
    assert not runs[0].dir.exists() and (runs[1].dir / "lake").is_dir()
    runs[1].discard()
