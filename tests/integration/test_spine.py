"""The spine against a real broker and real Delta tables: landing, dead letters, no PII leak."""
from __future__ import annotations

import asyncio
import json

import pytest

from alignloop.publish import publish
from alignloop.simulate import MALFORMED_KINDS, Simulator
from connectors.kafka import read_topic
from schemas.dlq import DeadLetter
from schemas.topics import DLQ, JUDGED, TOPICS, TRACES
from schemas.verdict import JudgedTrace
from tests.helpers import table_rows, wait_for

pytestmark = pytest.mark.integration

STRUCTURED = {"email", "phone", "card", "ip", "api_key", "ssn"}  # the first tier; names/addresses: issue 3

EXPECTED_REASON = {
    "not_json": {"invalid_json"}, "invalid_utf8": {"invalid_utf8"}, "wrong_types": {"validation_error"},
    "missing_fields": {"validation_error"}, "too_large": {"too_large"},
    "future_schema_version": {"unsupported_schema_version"}, "random_bytes": {"invalid_utf8", "invalid_json"},
    "not_an_object": {"not_an_object"},
}


def send(settings, records):
    return asyncio.run(publish(settings, settings.topic(TRACES), records))


def landed_ids(settings) -> list[str]:
    t = table_rows(settings, columns=["trace_id"])
    return t.column("trace_id").to_pylist() if t.num_columns else []


def dead_letters(settings) -> list[DeadLetter]:
    return [DeadLetter.from_record(m.headers, m.key, m.value) for m in asyncio.run(read_topic(settings, settings.topic(DLQ)))]


def test_every_malformed_kind_is_dead_lettered_and_a_later_trace_still_lands(make_settings, worker_factory):
    from connectors.kafka import create_topics

    s = make_settings(max_record_bytes=64 * 1024)
    asyncio.run(create_topics(s))
    sim = Simulator(seed=7)
    bad = [sim.malformed(i, max_bytes=s.max_record_bytes) for i in range(len(MALFORMED_KINDS))]
    bad.append((bytes(range(256)) * 3, "random_bytes"))
    bad.append((b"", "not_json"))
    good, _ = sim.trace(10_000)
    records = [(None, raw) for raw, _ in bad] + [(b"k", json.dumps(good).encode())]
    worker = worker_factory(s).start()
    send(s, records)
    wait_for(lambda: landed_ids(s) == [good["trace_id"]], 90, what="the valid trace to land", worker=worker)
    letters = wait_for(lambda: (d := dead_letters(s)) and len(d) >= len(bad) and d, 30, what="dead letters")
    assert worker.alive(), "the worker died on bad input"
    assert len(letters) == len(bad)
    by_bytes = {d.original_bytes(): d for d in letters}
    for raw, kind in bad:
        d = by_bytes[raw]  # original bytes kept exactly
        assert d.reason in EXPECTED_REASON[kind], (kind, d.reason, d.error)
        assert d.stage == "validate" and d.topic == s.topic(TRACES) and d.offset >= 0 and d.error
    assert {d.reason for d in letters} >= {"too_large", "invalid_utf8", "invalid_json", "not_an_object",
                                           "unsupported_schema_version", "validation_error"}


def test_valid_traffic_lands_once_with_verdicts_and_no_pii_leaks(kafka_settings, worker_factory):
    s = kafka_settings
    sim = Simulator(seed=11)
    planted = {"secret_pw": "hunter2-Correct-Horse", "email": "planted.person@leak-test.example",
               "card": "4111 1111 1111 1111", "phone": "+1 (415) 555-0142", "ip": "203.0.113.77",
               "key": "sk-PLANTEDabcdefghijklmnopqrstuvwxyz0123456789"}
    records, pii_values, ids = [], set(planted.values()), []
    for i in range(300):
        rec, truth = sim.trace(i)
        pii_values.update(v for k, v in truth.pii.items() if k in STRUCTURED)
        if i % 10 == 0:  # PII inside tool args and tool results, plus a secret under a secret-looking key
            rec["tool_calls"].append({"name": "email.send", "args": {
                "to": [planted["email"]], "password": planted["secret_pw"],
                "nested": {"deep": [f"card {planted['card']}", {"ip": planted["ip"]}]}},
                "result": {"delivered_to": planted["phone"], "auth": f"Bearer {planted['key']}"}})
            rec["final_response"] += f" I emailed {planted['email']} from {planted['ip']}."
        ids.append(rec["trace_id"])
        key = rec["conversation_id"].encode() if i % 3 else None  # agents may publish without a key
        records.append((key, json.dumps(rec).encode()))
    worker = worker_factory(s).start()
    send(s, records)
    wait_for(lambda: len(landed_ids(s)) >= len(ids), 120, what="300 traces to land", worker=worker)
    table = table_rows(s)
    assert sorted(table.column("trace_id").to_pylist()) == sorted(ids)  # exactly once
    assert set(table.column("outcome").to_pylist()) <= {"pass", "flag", "fail"}
    assert all(json.loads(v) for v in table.column("verdicts_json").to_pylist())
    assert sum(table.column("pii_count").to_pylist()) > 0
    # Every string cell of every table in the lake, read back as rows (Parquet pages are compressed).
    import pathlib

    from connectors.delta_sink import read_table

    cells = []
    for tdir in pathlib.Path(s.lake).iterdir():
        t = read_table(str(tdir))
        for col in t.column_names:
            cells.extend(str(v) for v in t.column(col).to_pylist())
    blob = "\n".join(cells)
    leaked = sorted(v for v in pii_values if v in blob)
    assert not leaked, f"raw PII in Delta: {leaked[:5]}"
    # Every topic but the raw input topic.
    judged = asyncio.run(read_topic(s, s.topic(JUDGED)))
    judged_traces = [(m.partition, JudgedTrace.model_validate_json(m.value)) for m in judged]
    assert len({j.trace.trace_id for _, j in judged_traces}) == len(ids)
    # each judged trace keeps its source partition (keyed or not), in source offset order per partition
    assert all(p == j.source.partition for p, j in judged_traces)
    for part in {p for p, _ in judged_traces}:
        offs = [j.source.offset for p, j in judged_traces if p == part]
        assert offs == sorted(offs)
    for spec in TOPICS.values():
        if spec.name == TRACES:
            continue
        for m in asyncio.run(read_topic(s, s.topic(spec.name), timeout_s=2)):
            text = m.value.decode("utf-8", "replace")
            assert not [v for v in pii_values if v in text], f"raw PII on {spec.name}"


def test_poison_records_between_valid_traces_are_dead_lettered_and_the_worker_keeps_going(make_settings,
                                                                                           worker_factory):
    """From an outside client: records that would stall the worker or whose output cannot be produced go to the
    DLQ with their reasons; the valid traces around them land within seconds; the worker stays up."""
    import time

    from aiokafka import AIOKafkaProducer

    from connectors.kafka import create_topics

    s = make_settings(max_event_bytes=256 * 1024)
    asyncio.run(create_topics(s))
    sim = Simulator(seed=13)
    warm, _ = sim.trace(0)
    worker = worker_factory(s).start()
    send(s, [(None, json.dumps(warm).encode())])
    wait_for(lambda: landed_ids(s) == [warm["trace_id"]], 90, what="the worker to be up", worker=worker)

    def trace(i: int, **changes) -> bytes:
        return json.dumps({**sim.trace(i)[0], **changes}, separators=(",", ":")).encode()

    poison = {  # reason expected for each
        trace(1, context=[""] * 330_000): "over_limit",  # ~1 MB in, ~16 MB judged
        trace(2, tool_calls=[{"name": "t"}] * 60_000): "over_limit",
        trace(3, final_response="An answer that goes on. " * 12_000): "output_too_large",  # ~290 KB in and out
        trace(4)[:-1] + b',"metadata":{"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}}": "invalid_json",
    }
    valid, records = [], []
    for n, raw in enumerate(poison):
        for i in range(10):
            rec, _ = sim.trace(100 + 10 * n + i)
            valid.append(rec["trace_id"])
            records.append(json.dumps(rec).encode())
        records.append(raw)

    async def publish_raw() -> None:  # an outside client: a plain aiokafka producer
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, max_request_size=2 << 20, linger_ms=5)
        await producer.start()
        try:
            for raw in records:
                await producer.send(s.topic(TRACES), raw)
        finally:
            await producer.stop()

    started = time.monotonic()
    asyncio.run(publish_raw())
    wait_for(lambda: len(landed_ids(s)) >= 1 + len(valid), 30, what="the valid traces", worker=worker)
    took = time.monotonic() - started
    assert took < 30 and sorted(landed_ids(s)) == sorted([warm["trace_id"], *valid])
    letters = wait_for(lambda: (d := dead_letters(s)) and len(d) >= len(poison) and d, 30, what="dead letters")
    assert {d.original_bytes(): d.reason for d in letters} == poison
    assert {d.original_bytes(): d.stage for d in letters} == {
        raw: "sink" if reason == "output_too_large" else "validate" for raw, reason in poison.items()}
    assert worker.alive(), f"the worker died on a poison record; see {worker.log_path}"


def test_records_of_an_aborted_transaction_never_land(make_settings, worker_factory):
    """agent.traces has a transactional writer (the OTLP turn assembler): the spine reads read_committed, so the
    traces of a transaction that was aborted (its writer killed or fenced) are never judged or landed."""
    from connectors.kafka import create_topics, discard_producer, start_transactional

    s = make_settings()
    asyncio.run(create_topics(s))
    sim = Simulator(seed=11)
    aborted, committed = [sim.trace(i)[0] for i in range(3)], sim.trace(3)[0]

    async def write() -> None:
        prod = await start_transactional(s, "test-aborted-writer")
        try:
            async with prod.transaction():
                for t in aborted:
                    await prod.send_and_wait(s.topic(TRACES), json.dumps(t).encode(), key=b"k")
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        async with prod.transaction():
            await prod.send_and_wait(s.topic(TRACES), json.dumps(committed).encode(), key=b"k")
        await discard_producer(prod)

    asyncio.run(write())
    worker = worker_factory(s).start()
    wait_for(lambda: committed["trace_id"] in landed_ids(s), 90, what="the committed trace to land", worker=worker)
    assert landed_ids(s) == [committed["trace_id"]]
