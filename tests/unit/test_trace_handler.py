"""TraceHandler without Kafka: judged traces go out on their source partition in offset order, dead letters with
their headers, and the rows land in a real Delta table once per source offset."""
from __future__ import annotations

import asyncio
import json
from alignloop.configs import load_configs
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.settings import Settings
from alignloop.simulate import Simulator
from connectors.delta_sink import read_table, table_sink
from connectors.kafka import Publisher
from schemas.record import Record
from schemas.tables import TRACES_TABLE
from schemas.verdict import JudgedTrace, Verdict
from streams.app import TraceHandler
from streams.metrics import STAGES, PipelineMetrics
from streams.encoding import VerdictSummary, encode_event, summarize, to_row
from streams.pipeline import Pipeline


class FakeProducer:
    """The aiokafka.AIOKafkaProducer calls the Publisher makes, recording what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int | None, list[tuple[bytes | None, bytes]], Any]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        self.sent.append((topic, partition, [(key, value)], headers))
        return self._done()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    @staticmethod
    def _done() -> asyncio.Future:
        f = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f


def _handler(tmp_path: Path, producer: FakeProducer, **overrides: Any) -> tuple[TraceHandler, Settings]:
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), topic_prefix="t.", **overrides)
    h = TraceHandler(s, Pipeline.from_settings(s, load_configs(s)), table_sink(s, TRACES_TABLE, "unit-traces"),
                     PipelineMetrics(CollectorRegistry()), Publisher(lambda: producer))
    asyncio.run(h.out.start())
    return h, s


def test_judged_traces_go_out_on_their_source_partition_in_offset_order(tmp_path: Path) -> None:
    producer = FakeProducer()
    h, s = _handler(tmp_path, producer)
    sim = Simulator(seed=3)
    batch = []
    for i in range(14):
        partition = i % 2
        rec, _ = sim.trace(i)
        key = None if i % 4 == 0 else rec["conversation_id"].encode()
        batch.append(Record("t.agent.traces", partition, 100 + i, key, json.dumps(rec).encode()))
    batch.append(Record("t.agent.traces", 1, 200, None, b"{not json"))
    landed = asyncio.run(h.handle(batch))
    assert landed == 14
    reg = h.metrics.registry  # counted per batch, without keeping the outcomes
    assert reg.get_sample_value("alignloop_pipeline_records_in_total", {"stage": "validate"}) == 15
    assert reg.get_sample_value("alignloop_pipeline_records_out_total", {"stage": "judge"}) == 14
    assert reg.get_sample_value("alignloop_pipeline_dlq_total", {"stage": "validate", "reason": "invalid_json"}) == 1
    assert sum(reg.get_sample_value("alignloop_pipeline_outcomes_total", {"outcome": o}) or 0
               for o in ("pass", "flag", "fail")) == 14
    n_judges = len(h.pipeline.judges)
    assert sum(s.value for m in reg.collect() if m.name == "alignloop_pipeline_verdicts"
               for s in m.samples if s.name.endswith("_total")) == 14 * n_judges

    judged = [(p, recs) for topic, p, recs, _ in producer.sent if topic == s.topic("traces.judged")]
    assert sum(len(recs) for _, recs in judged) == 14
    for part in (0, 1):  # each judged partition carries its source partition, in offset order
        events = [JudgedTrace.model_validate_json(v) for p, recs in judged if p == part for _, v in recs]
        assert [e.source.partition for e in events] == [part] * 7
        assert [e.source.offset for e in events] == sorted(e.source.offset for e in events)
    dlq = [(p, recs, headers) for topic, p, recs, headers in producer.sent if topic == s.topic("agent.traces.dlq")]
    assert len(dlq) == 1 and dlq[0][1] == [(None, b"{not json")] and dlq[0][2]

    rows = read_table(s.table_uri(TRACES_TABLE), columns=["src_partition", "src_offset"])
    assert sorted(zip(rows.column("src_partition").to_pylist(), rows.column("src_offset").to_pylist())) == \
        sorted((i % 2, 100 + i) for i in range(14))
    # a replay of the same batch lands nothing twice
    assert asyncio.run(h.handle(batch)) == 0
    assert read_table(s.table_uri(TRACES_TABLE), columns=["trace_id"]).num_rows == 14


def test_event_and_row_say_what_the_judged_trace_says(tmp_path: Path) -> None:
    """The event is the judged trace's JSON; the row's JSON columns are its parts', hostile keys included."""
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    p = Pipeline.from_settings(s, load_configs(s))
    sim = Simulator(seed=9)
    checked = 0
    for i in range(300):
        rec, _ = sim.trace(i)
        if i % 3 == 0:  # keys and strings that look like the JSON around them
            rec["metadata"] = {"a": {}, "verdicts": [{"x": '},"verdicts":'}], "b": {}, "outcome": "fail",
                               "pii": [], "source": {"topic": ',"source":{'}}
            rec["final_response"] += ' },"verdicts":[] ,"outcome":"pass" ,"source":{ ,"pii":'
        j = p.process(json.dumps(rec).encode(), "agent.traces", 0, i)
        assert isinstance(j, JudgedTrace)
        assert encode_event(j) == j.model_dump_json().encode()
        row = to_row(j, summarize(j.verdicts))
        assert row == to_row(j)
        assert row["verdicts_json"] == json.dumps([v.model_dump(mode="json") for v in j.verdicts],
                                                  separators=(",", ":"))
        assert json.loads(row["pii_json"]) == [f.model_dump(mode="json") for f in j.pii]
        assert json.loads(row["metadata_json"]) == j.trace.metadata
        lowest: dict[str, float] = {}
        for v in j.verdicts:
            for dim, sc in v.scores.items():
                lowest[dim] = min(sc, lowest.get(dim, sc))
        assert json.loads(row["scores_json"]) == lowest
        assert row["tags"] == sorted({t for v in j.verdicts for t in v.tags})
        checked += 1
    assert checked == 300


def test_summary_of_verdicts() -> None:
    verdicts = [Verdict(judge="a", scores={"safety": 1.0}, passed=True),
                Verdict(judge="a", scores={"safety": 0.5}, passed=True, tags=["x"]),
                Verdict(judge="b", scores={"safety": 0.2, "quality": 0.9}, passed=False, tags=["y", "x"])]
    got = summarize(verdicts)
    assert (got.scores_json, got.tags) == ('{"safety":0.2,"quality":0.9}', ["x", "y"])
    assert got.labels == (("a", "ok", True), ("a", "ok", True), ("b", "ok", False))
    assert got.json == VerdictSummary(list(verdicts)).json == \
        json.dumps([v.model_dump(mode="json") for v in verdicts], separators=(",", ":"))


def test_verdict_metrics_count_the_same_through_summaries(tmp_path: Path) -> None:
    """Verdicts counted per summary at flush equal verdicts counted one by one."""
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    p = Pipeline.from_settings(s, load_configs(s))
    sim = Simulator(seed=5)
    outs = [p.process(json.dumps(sim.trace(i)[0]).encode(), "agent.traces", 0, i) for i in range(200)]
    counts = []
    for use_summary in (True, False):
        m = PipelineMetrics(CollectorRegistry())
        tally = m.tally()
        for o in outs:
            tally.add(o, summarize(o.verdicts) if use_summary else None)
        tally.flush()
        counts.append({tuple(sorted(x.labels.items())): x.value for x in m.verdicts.collect()[0].samples
                       if x.name.endswith("_total")})
    one_by_one: dict[tuple, float] = {}  # each verdict counted on its own, as the metric's labels say it
    for o in outs:
        for v in o.verdicts:
            k = (("judge", v.judge), ("passed", "true" if v.passed else "false"), ("status", v.status))
            one_by_one[k] = one_by_one.get(k, 0) + 1
    assert counts[0] == counts[1] == one_by_one and sum(counts[0].values()) == 200 * len(p.judges)


def test_an_event_over_max_event_bytes_is_the_records_dead_letter(tmp_path: Path) -> None:
    from connectors.delta_sink import DeltaSink
    from schemas.dlq import DeadLetter
    from schemas.tables import TABLES

    producer = FakeProducer()
    h, s = _handler(tmp_path, producer, max_event_bytes=8192)
    sim = Simulator(seed=6)
    big, _ = sim.trace(1)
    big["final_response"] = "x " * 5000  # ~10 KB judged
    batch = [Record("t.agent.traces", 0, i, None, json.dumps(sim.trace(10 + i)[0]).encode()) for i in range(3)]
    batch.append(Record("t.agent.traces", 0, 7, b"k", json.dumps(big).encode()))  # the batch's last record
    batch = [Record(r.topic, 0, off, r.key, r.value) for off, r in enumerate(batch)]
    assert asyncio.run(h.handle(batch)) == 3
    (letter,) = [DeadLetter.from_record(headers, recs[0][0], recs[0][1]) for topic, _, recs, headers in producer.sent
                 if topic == s.topic("agent.traces.dlq")]
    assert (letter.stage, letter.reason, letter.offset, letter.key) == ("sink", "output_too_large", 3, b"k")
    assert letter.original_bytes() == batch[3].value and "(max_event_bytes)" in letter.error
    judged = [v for topic, _, recs, _ in producer.sent if topic == s.topic("traces.judged") for _, v in recs]
    assert len(judged) == 3 and all(len(v) <= 8192 for v in judged)
    schema, partition_by = TABLES[TRACES_TABLE]
    again = DeltaSink(s.table_uri(TRACES_TABLE), schema, partition_by, name=f"{s.app_id}-unit-traces")
    assert again.committed_offset("t.agent.traces", 0) == 3  # the dead-lettered last record's offset is done too
    reg = h.metrics.registry  # it went through every stage into the sink, and out of none
    assert reg.get_sample_value("alignloop_pipeline_dlq_total", {"stage": "sink", "reason": "output_too_large"}) == 1
    assert [reg.get_sample_value("alignloop_pipeline_records_out_total", {"stage": st}) for st in STAGES] == \
        [4, 4, 4, 3]
    assert [reg.get_sample_value("alignloop_pipeline_records_in_total", {"stage": st}) for st in STAGES] == [4] * 4


class LateAckProducer(FakeProducer):
    """Acks arrive after ``drain`` starts waiting (as from a broker); the delivery numbered ``fail_at`` is refused."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.futures: list[asyncio.Future] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None,
                   headers: Any = None) -> asyncio.Future:
        self.sent.append((topic, partition, [(key, value)], headers))
        loop = asyncio.get_running_loop()
        f = loop.create_future()
        if len(self.sent) - 1 == self.fail_at:
            loop.call_later(0.05, f.set_exception, RuntimeError("NotEnoughReplicas"))
        else:
            loop.call_later(0.01 + 0.001 * len(self.sent), f.set_result, None)
        self.futures.append(f)
        return f


def _records(n: int) -> list[Record]:
    sim = Simulator(seed=5)
    return [Record("t.agent.traces", i % 2, 10 + i, None, json.dumps(sim.trace(i)[0]).encode()) for i in range(n)]


def test_rows_land_only_after_every_late_ack(tmp_path: Path) -> None:
    producer = LateAckProducer()
    h, s = _handler(tmp_path, producer)
    flush, acked = h.sink.flush, []

    def checked_flush() -> int:  # the table commit sees every delivery acked
        acked.append(all(f.done() for f in producer.futures))
        return flush()

    h.sink.flush = checked_flush  # type: ignore[method-assign]
    assert asyncio.run(h.handle(_records(6))) == 6
    assert acked == [True] and len(producer.futures) == 6
    assert read_table(s.table_uri(TRACES_TABLE), columns=["trace_id"]).num_rows == 6


def test_a_refused_delivery_fails_the_batch_before_the_table_commit(tmp_path: Path) -> None:
    batch = _records(6)
    h, s = _handler(tmp_path, LateAckProducer(fail_at=3))
    try:
        asyncio.run(h.handle(batch))
        raise AssertionError("a refused delivery must fail the batch")
    except RuntimeError as exc:
        assert "NotEnoughReplicas" in str(exc)
    assert read_table(s.table_uri(TRACES_TABLE), columns=["trace_id"]).num_rows == 0  # nothing landed
    h2, _ = _handler(tmp_path, LateAckProducer())  # the restarted worker replays the batch: each row once
    assert asyncio.run(h2.handle(batch)) == 6
    assert read_table(s.table_uri(TRACES_TABLE), columns=["trace_id"]).num_rows == 6


def test_per_agent_tool_allowlist_holds_for_an_agent_id_the_scrubber_changes(tmp_path: Path) -> None:
    """The judges see scrubbed traces: an allowlist configured for ``ops/jane.doe@acme.io`` must still apply once
    the id reads ``ops/<EMAIL_…>``, and an agent without one still gets the default."""
    from streams.pipeline import scrubbed_ids

    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), pii_hmac_key="k")
    configs = load_configs(s)
    agent = "ops/jane.doe@acme.io"
    configs.policy.tools.agents = {agent: ["pager.page"]}
    assert "pager.page" not in configs.policy.tools.default_allowed
    p = Pipeline.from_settings(s, configs)
    assert scrubbed_ids(p.scrubber, agent, "base")[0] != agent

    def policy_tags(agent_id: str) -> list[str]:
        rec = {"trace_id": f"t-{agent_id}", "conversation_id": "c1", "agent_id": agent_id, "policy_id": "base",
               "user_message": "page the on-call engineer", "final_response": "Paged the on-call engineer.",
               "tool_calls": [{"name": "pager.page", "args": {"team": "db"}, "result": {"ok": True}}]}
        j = p.process(json.dumps(rec).encode(), "agent.traces", 0, 0)
        assert isinstance(j, JudgedTrace)
        return next(v.tags for v in j.verdicts if v.judge == "policy")

    assert "tool_not_allowed:pager.page" not in policy_tags(agent)
    assert "tool_not_allowed:pager.page" in policy_tags("ops/other-agent")
