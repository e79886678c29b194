"""The OTLP/HTTP handler without a broker: status codes per the spec, gzip, a Kafka outage that loses nothing, and
the assembler's turn state replayed after a crash."""
from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import httpx

from alignloop.ingest.otlp_server import OtlpReceiver
from schemas.settings import Settings
from tests.otel_agent import agent_turn


class FlakySink:
    """Stands in for IngestSink: fails while ``down``, else records what was sent (acks at once)."""

    def __init__(self) -> None:
        self.down = False
        self.records: list = []
        self.dead: list = []

    async def _ack(self):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def spans(self, trace_id, value):
        if self.down:
            raise ConnectionError("broker unavailable")
        self.records.append(json.loads(value))
        return await self._ack()

    async def dead(self, letter):
        self.dead.append(letter)
        return await self._ack()

    def forget(self) -> None:
        pass


@pytest.fixture
def body() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent_turn(provider.get_tracer("t"), 1, conversation="c")
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


@pytest.fixture
def receiver(tmp_path):
    r = OtlpReceiver(Settings(home=tmp_path), settle_s=5, max_body_bytes=1 << 20, assemble=False)
    r.sink = FlakySink()
    return r


PB = {"content-type": "application/x-protobuf"}


class Client:
    """Requests straight into the ASGI app (httpx's ASGITransport runs no lifespan: the flaky sink stays)."""

    def __init__(self, app) -> None:
        self.app = app

    def _call(self, method: str, url: str, **kw):
        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t") as c:
                return await c.request(method, url, **kw)
        return asyncio.run(go())

    def post(self, url, **kw):
        return self._call("POST", url, **kw)

    def get(self, url, **kw):
        return self._call("GET", url, **kw)


def test_status_codes(receiver, body):
    client = Client(receiver.app())
    ok = client.post("/v1/traces", content=body, headers=PB)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/x-protobuf"
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(ok.content)
    assert not resp.HasField("partial_success") and len(receiver.sink.records) == 1  # one OTel trace
    gz = client.post("/v1/traces", content=gzip.compress(body), headers={**PB, "content-encoding": "gzip"})
    assert gz.status_code == 200
    assert client.post("/v1/traces", content=b"\x1f\x8bnope", headers={**PB, "content-encoding": "gzip"}
                       ).status_code == 400
    assert client.post("/v1/traces", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/v1/traces", content=b"x" * (2 << 20), headers=PB).status_code == 413
    assert client.get("/v1/traces").status_code == 405
    assert 'alignloop_ingest_requests_total{status="200"} 2.0' in client.get("/metrics").text


def test_a_kafka_outage_is_a_503_and_nothing_is_held(receiver, body):
    client = Client(receiver.app())
    receiver.sink.down = True
    down = client.post("/v1/traces", content=body, headers=PB)
    assert down.status_code == 503 and down.headers["retry-after"] and receiver.sink.records == []
    receiver.sink.down = False
    again = client.post("/v1/traces", content=body, headers=PB)  # the exporter's retry: the same spans
    assert again.status_code == 200 and len(receiver.sink.records) == 1
    rec = receiver.sink.records[0]
    assert rec["kind"] == "spans" and len(rec["spans"]) == 4 and {s["trace_id"] for s in rec["spans"]} == {
        rec["trace_id"]}


def _records(body: bytes, per: int) -> list[dict]:
    """The request's spans as the receiver writes them, split ``per`` spans a record (a turn over requests)."""
    from streams.ingest.otlp import decode_request, spans_of

    spans = [s.to_dict() for s in spans_of(decode_request(body, "application/x-protobuf"))[0]]
    return [{"kind": "spans", "trace_id": spans[0]["trace_id"], "spans": spans[i:i + per]}
            for i in range(0, len(spans), per)]


def test_the_assembler_state_rebuilt_from_the_committed_offset_publishes_each_turn_once(body):
    from streams.ingest.assembly import PartitionTurns
    from streams.ingest.genai import map_otel_trace

    recs = _records(body, 3)  # children first, the root (agent span) in the second record
    log = [recs[0], recs[1]]
    part = PartitionTurns(settle_s=5)
    assert part.feed(0, log[0], 0.0) == [] and part.commit_offset() == 0  # open turn: the offset stays at it
    done = part.feed(1, log[1], 0.0)
    assert len(done) == 1 and len(done[0]) == 4 and part.commit_offset() == 2
    assert map_otel_trace(done[0])[0][0].final_response == "Order 1001 ships tomorrow."
    # the crash came after the transaction (trace, done marker, offset 2) committed: restart at 2, nothing again
    log.append({"kind": "done", "trace_id": recs[0]["trace_id"], "span_ids": [s.span_id for s in done[0]]})
    again = PartitionTurns(settle_s=5, replay_end=3, position=2)
    assert again.feed(2, log[2], 0.0) == [] and again.due(100.0) == []
    # a re-sent copy of the spans (the exporter retried a request whose records Kafka did take) is dropped
    assert again.feed(3, recs[0], 0.0) == [] and again.due(100.0) == [] and again.held == 0

    # the crash came before that transaction committed: the offset was still 0, no marker; replay rebuilds it
    replay = PartitionTurns(settle_s=5, replay_end=2, position=0)
    assert replay.feed(0, log[0], 0.0) == [] and replay.due(100.0) == []  # not caught up: nothing released
    out = replay.feed(1, log[1], 0.0)  # the replay's last record: caught up, no marker can follow
    assert len(out) == 1 and {s.span_id for s in out[0]} == {s.span_id for s in done[0]}

    # a turn complete in the replayed range whose marker comes later is not released twice
    late = PartitionTurns(settle_s=5, replay_end=3, position=0)
    for off, rec in enumerate(log):
        assert late.feed(off, rec, 0.0) == []
    assert late.due(100.0) == [] and late.held == 0 and late.commit_offset() == 3


def test_a_turn_without_root_settles_and_holds_the_offset_until_then(body):
    from streams.ingest.assembly import PartitionTurns

    recs = _records(body, 3)
    part = PartitionTurns(settle_s=5, replay_end=0)
    part.feed(7, recs[0], 0.0)
    part.advance(20)
    assert part.due(4.0) == [] and part.commit_offset() == 7
    out = part.due(5.0)
    assert len(out) == 1 and len(out[0]) == 3 and part.commit_offset() == 20
