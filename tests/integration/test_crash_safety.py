"""Crash safety against the real broker: kill -9 the worker mid-run, stop/start the broker mid-run; every valid
trace lands exactly once and every malformed record reaches the DLQ."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from alignloop.publish import publish
from alignloop.simulate import Simulator
from connectors.kafka import read_topic
from schemas.dlq import DeadLetter
from schemas.topics import DLQ, TRACES
from tests.helpers import table_rows, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 20_000
MALFORMED = 0.02


def _records(seed: int):
    valid, bad = [], []
    records = []
    for key, value, truth, kind in Simulator(seed=seed).records(N, malformed=MALFORMED, max_bytes=64 * 1024):
        records.append((key, value))
        (bad if kind else valid).append(value if kind else truth.trace_id)
    return records, valid, bad


def _landed(s) -> int:
    t = table_rows(s, columns=["trace_id"])
    return t.num_rows if t.num_columns else 0


def _publish_in_thread(s, records, rate):
    box: dict = {}

    def run() -> None:
        try:
            box["sent"] = asyncio.run(publish(s, s.topic(TRACES), records, rate=rate))
        except BaseException as exc:  # surfaced by the test
            box["error"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, box


def _assert_exactly_once(s, valid: list[str], bad: list[bytes]) -> None:
    wait_for(lambda: _landed(s) >= len(valid), 300, interval=1, what=f"{len(valid)} rows")
    time.sleep(3)  # anything still in flight (a duplicate) would land now
    ids = table_rows(s, columns=["trace_id"]).column("trace_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(valid), (len(ids), len(set(ids)), len(valid))
    assert set(ids) == set(valid)
    letters = [DeadLetter.from_record(m.headers, m.key, m.value) for m in asyncio.run(read_topic(s, s.topic(DLQ)))]
    assert {d.original_bytes() for d in letters} == set(bad)
    assert len({(d.partition, d.offset) for d in letters}) == len(bad)


def test_worker_killed_twice_with_sigkill(make_settings, worker_factory):
    from connectors.kafka import create_topics

    s = make_settings(max_record_bytes=64 * 1024, partitions=4)
    asyncio.run(create_topics(s))
    records, valid, bad = _records(seed=101)
    worker = worker_factory(s).start()
    th, box = _publish_in_thread(s, records, rate=2500)
    kills = 0
    for threshold in (3_000, 9_000):
        wait_for(lambda: _landed(s) >= threshold, 180, what=f"{threshold} rows before kill", worker=worker)
        worker.kill()  # SIGKILL: no shutdown hooks, no final commit
        kills += 1
        worker = worker_factory(s).start()
    th.join(300)
    assert "error" not in box and box.get("sent") == N
    _assert_exactly_once(s, valid, bad)
    assert kills == 2 and worker.alive()


def test_broker_stopped_and_restarted_mid_run(broker, make_settings, worker_factory):
    if not hasattr(broker, "stop"):
        pytest.skip("external cluster: the test cannot restart it")  # only with ALIGNLOOP_TEST_BOOTSTRAP
    from connectors.kafka import create_topics

    s = make_settings(max_record_bytes=64 * 1024, partitions=4)
    asyncio.run(create_topics(s))
    records, valid, bad = _records(seed=202)
    half = len(records) // 2
    worker = worker_factory(s).start()
    asyncio.run(publish(s, s.topic(TRACES), records[:half]))
    wait_for(lambda: _landed(s) >= 2_000, 180, what="rows before the broker stops", worker=worker)
    broker.stop()
    time.sleep(5)  # the worker keeps running without a broker
    broker.start()
    asyncio.run(publish(s, s.topic(TRACES), records[half:]))
    _assert_exactly_once(s, valid, bad)
    assert worker.alive(), f"the worker exited during the broker outage; see {worker.log_path}"


async def _set_topic_config(s, topic: str, **configs: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from connectors.kafka import aiokafka_client_kwargs

    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(s), request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs={k.replace("_", "."): v for k, v in configs.items()})])
    finally:
        await admin.close()


def test_a_batch_that_raises_is_not_committed_and_lands_after_the_restart(make_settings, worker_factory):
    """A real failure inside a batch: traces.judged refuses messages over 64 KB (a misconfigured topic), so the
    broker rejects the batch's judged events and the worker stops. Its offsets must stay uncommitted: once the
    topic is fixed and the worker restarted, all 40 valid traces around the large one land, exactly once."""
    from connectors.kafka import create_topics
    from schemas.topics import JUDGED

    s = make_settings(partitions=1, max_record_bytes=512 * 1024)
    asyncio.run(create_topics(s))
    asyncio.run(_set_topic_config(s, s.topic(JUDGED), max_message_bytes="65536"))
    sim = Simulator(seed=303)
    records, ids = [], []
    for i in range(41):
        rec, _ = sim.trace(i)
        if i == 20:  # a valid trace whose judged event (~150 KB) the misconfigured topic cannot take
            rec["final_response"] = "A long and careful answer. " * 5_500
        ids.append(rec["trace_id"])
        records.append((rec["conversation_id"].encode(), json.dumps(rec).encode()))
    asyncio.run(publish(s, s.topic(TRACES), records))  # all in before the worker starts: one batch
    worker = worker_factory(s).start()
    try:
        wait_for(lambda: not worker.alive(), 90, what="the worker to stop on the failed batch")
    except AssertionError:
        worker.kill()  # a worker that keeps running after its batch failed: what it committed is what is tested
    assert _landed(s) == 0
    asyncio.run(_set_topic_config(s, s.topic(JUDGED), max_message_bytes="10485760"))
    worker = worker_factory(s).start()
    wait_for(lambda: _landed(s) >= len(ids), 120, what="the 41 traces after the restart", worker=worker)
    time.sleep(3)  # a duplicate would land now
    landed = table_rows(s, columns=["trace_id"]).column("trace_id").to_pylist()
    assert sorted(landed) == sorted(ids)
