"""The stream worker escalates (within budget) and curates, against a real broker and real Delta tables."""
from __future__ import annotations

import asyncio
import json

import pytest

from alignloop.publish import publish
from alignloop.simulate import Simulator
from connectors.kafka import read_topic
from schemas.topics import ESCALATIONS, TRACES
from streams.hifi.step import EscalationEvent
from tests.helpers import table_rows, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("roles", [("all",), ("spine", "monitor")], ids=["one-process", "spine+monitor"])
def test_worker_publishes_escalations_and_curated_rows(kafka_settings, worker_factory, roles) -> None:
    """The same outcome whether one process does everything or the monitor role runs as its own process."""
    s = kafka_settings
    sim = Simulator(seed=21)
    records, truths = [], {}
    for i in range(600):
        rec, truth = sim.trace(i)
        truths[rec["trace_id"]] = truth
        records.append((rec["conversation_id"].encode(), json.dumps(rec).encode()))
    workers = [worker_factory(s, role).start() for role in roles]
    worker = workers[-1]  # the one that escalates and curates
    asyncio.run(publish(s, s.topic(TRACES), records))
    wait_for(lambda: table_rows(s, columns=["trace_id"]).num_rows >= len(records), 120, what="traces to land",
             worker=worker)
    # the drain timer flushes candidates that wait while no batch arrives
    wait_for(lambda: len(asyncio.run(read_topic(s, s.topic(ESCALATIONS), timeout_s=1))) > 0, 30,
             what="escalations", worker=worker)
    events = [EscalationEvent.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(ESCALATIONS)))]
    ids = [e.judged.trace.trace_id for e in events]
    assert len(ids) == len(set(ids)) and set(ids) <= set(truths)
    assert len(ids) <= 0.08 * len(records) + 1  # max_fraction budget
    assert all(e.reasons and 0 <= e.priority <= 2 for e in events)
    sft = table_rows(s, "sft_examples", columns=["example_id", "judge_versions_json"])
    assert sft.num_rows > 0
    sft_ids = sft.column("example_id").to_pylist()
    assert not any(truths[t].bad for t in sft_ids)  # curated examples are clean
    assert all("policy" in json.loads(v) for v in sft.column("judge_versions_json").to_pylist())
