"""The monitor killed twice (kill -9) mid-run: every trace is escalated at most once, the budget holds across
the restarts, and the LLM judge's labels land no duplicate curated row."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from alignloop.publish import publish
from alignloop.simulate import Simulator
from connectors.kafka import aiokafka_client_kwargs, end_offsets, read_topic
from connectors.llm_judge import LlmJudgeClient
from schemas.topics import ESCALATIONS, JUDGED, TRACES
from streams.hifi.step import EscalationEvent
from streams.hifi.worker import JudgeWorker
from streams.judges.config import JudgesConfig, LlmJudgeConfig
from tests.fakes.llm_server import FakeLlmServer
from tests.helpers import table_rows, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 3000
RATE = 150.0  # traces/s: a 20 s run, so both kills land mid-run
PER_MINUTE = 60  # a tight llm budget, so buckets refilled by a restart would show
JUDGES_YAML = f"""
escalation:
  max_fraction: 0.08
  tiers:
    llm: {{per_minute: {PER_MINUTE}, per_hour: 20000}}
    human: {{per_minute: 10, per_hour: 200}}
"""


async def _committed(settings, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group does not exist yet (no coordinator)
        return {}
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}


def _escalations(s) -> list[EscalationEvent]:
    return [EscalationEvent.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(ESCALATIONS)))]


def test_monitor_killed_twice_escalates_each_trace_once_within_budget(kafka_settings, worker_factory, tmp_path):
    s = kafka_settings
    judges_yaml = tmp_path / "judges.yaml"
    judges_yaml.write_text(JUDGES_YAML)
    sim = Simulator(seed=41)
    records = []
    for i in range(N):
        rec, _ = sim.trace(i)
        records.append((rec["conversation_id"].encode(), json.dumps(rec).encode()))
    spine = worker_factory(s, "spine").start()
    monitor = worker_factory(s, "monitor")
    monitor.env = {"ALIGNLOOP_JUDGES_CONFIG": str(judges_yaml)}
    monitor.start()
    publisher = threading.Thread(target=lambda: asyncio.run(publish(s, s.topic(TRACES), records, rate=RATE)))
    publisher.start()
    group = f"{s.app_id}-monitor"

    def progress() -> int:  # judged traces the monitor has committed
        return sum(o for o in asyncio.run(_committed(s, group, s.topic(JUDGED))).values() if o > 0)

    try:
        for share in (0.25, 0.6):  # kill -9 mid-run (batches in flight, offsets not yet committed), start again
            wait_for(lambda: progress() >= share * N, 180, what=f"the monitor past {share:.0%}", worker=monitor)
            monitor.kill()
            monitor.start()
    finally:
        publisher.join()
    assert spine.alive()
    wait_for(lambda: table_rows(s, columns=["trace_id"]).num_rows >= N, 120, what="traces to land", worker=spine)
    ends = asyncio.run(end_offsets(s, s.topic(JUDGED)))
    wait_for(lambda: asyncio.run(_committed(s, group, s.topic(JUDGED))) == ends, 180,
             what="the monitor to read every judged trace", worker=monitor)
    time.sleep(6)  # the drain timer flushes the last candidates
    monitor.stop()

    events = _escalations(s)
    per_trace = Counter(e.judged.trace.trace_id for e in events)
    dupes = {t: n for t, n in per_trace.items() if n > 1}
    assert events and not dupes, f"{len(dupes)} traces escalated more than once"
    assert len(events) <= 0.08 * N + 1, "max_fraction budget"
    # the llm tier's per-minute budget, in the stream's time: capacity plus its refill over the run
    times = sorted(e.judged.processed_at.timestamp() for e in events if e.tier == "llm")
    span_min = (times[-1] - times[0]) / 60
    if len(times) > PER_MINUTE * (1 + span_min) + 2:  # diagnose: the checkpoints in publication order
        for m in asyncio.run(read_topic(s, s.topic(ESCALATIONS))):
            h = dict(m.headers or ())
            cp = json.loads(h.get("alignloop.escalator", b"{}"))
            print(m.partition, m.offset, m.timestamp, cp.get("seq"), cp.get("state", {}).get("clock"),
                  cp.get("state", {}).get("buckets"))
    assert len(times) <= PER_MINUTE * (1 + span_min) + 2, (len(times), span_min)

    # the LLM judge labels every escalation; its SFT rows are curated once per trace
    with FakeLlmServer() as server:
        cfg = JudgesConfig(llm=LlmJudgeConfig(base_url=server.base_url, model="m", concurrency=8))
        worker = JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm), CollectorRegistry())
        asyncio.run(worker.run(max_idle_s=5))
    sft = table_rows(s, "sft_examples", columns=["example_id"]).column("example_id").to_pylist()
    assert sft and len(sft) == len(set(sft)), "a duplicate curated row"
