"""TraceHandler without Kafka: judged traces go out in per-partition record batches in offset order, dead letters
one by one, and the rows land in a real Delta table once per source offset."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from alignloop.configs import load_configs
from schemas.settings import Settings
from alignloop.simulate import Simulator
from connectors.delta_sink import DeltaSink, read_table
from schemas.tables import TABLES, TRACES_TABLE
from schemas.verdict import JudgedTrace, Verdict
from streams.app import TraceHandler
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline, encode_event, summarize


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.records = capacity, []

    def append(self, *, key: bytes | None, value: bytes, timestamp: Any) -> object | None:
        if len(self.records) >= self.capacity:
            return None  # full, as aiokafka's BatchBuilder says it
        self.records.append((key, value))
        return object()


class FakeProducer:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int | None, list[tuple[bytes | None, bytes]], Any]] = []

    def create(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch.records, None))
        return self._done()

    async def send_one(self, topic: str, key: bytes | None, value: bytes, headers: Any = None,
                       partition: int | None = None) -> asyncio.Future:
        self.sent.append((topic, partition, [(key, value)], headers))
        return self._done()

    async def partitions_for(self, topic: str) -> int:
        return 2

    @staticmethod
    def _done() -> asyncio.Future:
        f = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f


def _handler(tmp_path: Path, producer: FakeProducer) -> tuple[TraceHandler, Settings]:
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), topic_prefix="t.")
    schema, partition_by = TABLES[TRACES_TABLE]
    sink = DeltaSink(s.table_uri(TRACES_TABLE), schema, partition_by, name="unit-traces")
    h = TraceHandler(s, Pipeline.from_settings(s, load_configs(s)), sink, PipelineMetrics(CollectorRegistry()),
                     producer.send_one, producer.partitions_for, producer)
    return h, s


def test_judged_traces_go_out_in_partition_batches_in_offset_order(tmp_path: Path) -> None:
    producer = FakeProducer(capacity=3)
    h, s = _handler(tmp_path, producer)
    sim = Simulator(seed=3)
    batch = []
    for i in range(14):
        partition = i % 2
        rec, _ = sim.trace(i)
        key = None if i % 4 == 0 else rec["conversation_id"].encode()
        batch.append(("t.agent.traces", partition, 100 + i, key, json.dumps(rec).encode()))
    batch.append(("t.agent.traces", 1, 200, None, b"{not json"))
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
    assert all(len(recs) <= 3 for _, recs in judged)
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


def test_row_parts_cut_from_the_event_equal_serialised_ones(tmp_path: Path) -> None:
    """to_row(j, event) reuses the event's verdicts/pii JSON; hostile keys inside the trace cannot fool it."""
    from streams.pipeline import to_row

    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    p = Pipeline.from_settings(s, load_configs(s))
    sim = Simulator(seed=9)
    checked = 0
    for i in range(300):
        rec, _ = sim.trace(i)
        if i % 3 == 0:  # keys and strings that look like the delimiters the cut searches for
            rec["metadata"] = {"a": {}, "verdicts": [{"x": '},"verdicts":'}], "b": {}, "outcome": "fail",
                               "pii": [], "source": {"topic": ',"source":{'}}
            rec["final_response"] += ' },"verdicts":[] ,"outcome":"pass" ,"source":{ ,"pii":'
        j = p.process(json.dumps(rec).encode(), "agent.traces", 0, i)
        assert isinstance(j, JudgedTrace)
        event = j.model_dump_json().encode()
        assert encode_event(j) == event and encode_event(j, summarize(j.verdicts)) == event
        row = to_row(j, event, summarize(j.verdicts))
        assert row == to_row(j, event) == to_row(j)
        # the summary's parts are what the verdicts say
        assert row["verdicts_json"] == json.dumps([v.model_dump(mode="json") for v in j.verdicts],
                                                  separators=(",", ":"))
        lowest: dict[str, float] = {}
        for v in j.verdicts:
            for dim, sc in v.scores.items():
                lowest[dim] = min(sc, lowest.get(dim, sc))
        assert json.loads(row["scores_json"]) == lowest
        assert row["tags"] == sorted({t for v in j.verdicts for t in v.tags})
        checked += 1
    assert checked == 300


def test_summaries_are_kept_only_for_lists_of_shared_verdicts() -> None:
    from streams.judges.base import is_shared, shared_verdict, verdict_template
    from streams.pipeline import VerdictSummary

    t = verdict_template("a", "1", 0.9, True)
    shared = [shared_verdict(t, {"safety": 1.0}), shared_verdict(t, {"safety": 0.5}, tags=["x"])]
    assert all(is_shared(v) for v in shared)
    first = summarize(shared)
    assert summarize(list(shared)) is first  # the same shared verdicts: the kept summary
    assert (first.scores_json, first.tags, first.labels) == ('{"safety":0.5}', ["x"], (("a", "ok", True),) * 2)
    fresh = [shared[0], Verdict(judge="b", scores={"safety": 0.2}, passed=False)]
    one, two = summarize(fresh), summarize(fresh)
    assert one is not two and one.json == two.json == VerdictSummary(fresh).json  # never kept: ids may be reused
    assert one.labels == (("a", "ok", True), ("b", "ok", False))


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
