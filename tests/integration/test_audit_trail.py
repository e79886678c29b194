"""The audit trail stays one chain with several writers, survives a lost mirror write, and exposes tampering."""
from __future__ import annotations

import asyncio

from connectors.audit import AuditTrail, mirror, read_entries, verify
from connectors.delta_sink import read_table
from connectors.kafka import producer
from schemas.audit import AuditEntry
from schemas.tables import AUDIT_TABLE


async def _interleaved(settings, n_each: int) -> None:
    a, b = AuditTrail(settings), AuditTrail(settings)
    try:
        for i in range(n_each):  # alternating writers fence each other on every append
            await a.append(actor="ui", action="label", subject=f"item-{i}", details={"i": i})
            await b.append(actor="rollout-controller", action="rollout.step", subject="agent-1", details={"i": i})
    finally:
        await a.close()
        await b.close()


async def _concurrent(settings, n_each: int) -> None:
    trails = [AuditTrail(settings) for _ in range(3)]
    try:
        await asyncio.gather(*(t.append(actor=f"w{k}", action="x", subject=str(i))
                               for i in range(n_each) for k, t in enumerate(trails)))
    finally:
        for t in trails:
            await t.close()


def test_writers_that_fence_each_other_keep_one_chain_and_the_mirror_agrees(kafka_settings):
    s = kafka_settings
    asyncio.run(_interleaved(s, 6))
    asyncio.run(_concurrent(s, 4))
    entries = [e for e, _ in asyncio.run(read_entries(s))]
    assert [e.seq for e in entries] == list(range(24))
    assert len({e.hash for e in entries}) == 24
    report = asyncio.run(verify(s))
    assert report.ok and report.entries == 24 and report.table_rows == 24, report.line()
    # a mirror catch-up after everything landed writes nothing (app transaction = offset)
    assert asyncio.run(mirror(s)) == 0
    assert read_table(s.table_uri(AUDIT_TABLE)).num_rows == 24


def test_a_forged_entry_breaks_the_chain_where_it_was_inserted(kafka_settings):
    s = kafka_settings
    trail = AuditTrail(s)

    async def scenario():
        try:
            for i in range(3):
                await trail.append(actor="admin", action="rollout.promote", subject=f"agent-{i}")
            tail = (await read_entries(s, last=1))[0][0]
            # an outside producer appends an entry that claims a link but edits its content after hashing
            forged = AuditEntry.after(tail, actor="mallory", action="rollout.promote", subject="agent-x")
            forged = forged.model_copy(update={"actor": "admin"})
            async with producer(s) as p:
                await p.send_and_wait(s.topic("audit.log"), forged.model_dump_json().encode(), partition=0)
        finally:
            await trail.close()

    asyncio.run(scenario())
    report = asyncio.run(verify(s))
    assert not report.ok and report.broken_at == 3, report.line()
