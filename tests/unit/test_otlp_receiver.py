"""The OTLP/HTTP handler without a broker: status codes per the spec, gzip, and a Kafka outage that loses nothing."""
from __future__ import annotations

import asyncio
import gzip
import time

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
        self.traces: list = []
        self.dead: list = []

    async def _ack(self):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def trace(self, t):
        if self.down:
            raise ConnectionError("broker unavailable")
        self.traces.append(t)
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
    r = OtlpReceiver(Settings(home=tmp_path), settle_s=5, max_body_bytes=1 << 20)
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
    assert not resp.HasField("partial_success") and len(receiver.sink.traces) == 1
    gz = client.post("/v1/traces", content=gzip.compress(body), headers={**PB, "content-encoding": "gzip"})
    assert gz.status_code == 200
    assert client.post("/v1/traces", content=b"\x1f\x8bnope", headers={**PB, "content-encoding": "gzip"}
                       ).status_code == 400
    assert client.post("/v1/traces", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/v1/traces", content=b"x" * (2 << 20), headers=PB).status_code == 413
    assert client.get("/v1/traces").status_code == 405
    assert 'alignloop_ingest_requests_total{status="200"} 2.0' in client.get("/metrics").text


def test_a_kafka_outage_is_a_503_and_the_turn_is_published_once_afterwards(receiver, body):
    client = Client(receiver.app())
    receiver.sink.down = True
    down = client.post("/v1/traces", content=body, headers=PB)
    assert down.status_code == 503 and down.headers["retry-after"]
    assert receiver.buffer.held == 4  # taken out for publishing, put back when it failed
    receiver.sink.down = False
    again = client.post("/v1/traces", content=body, headers=PB)  # the exporter's retry: the same spans
    assert again.status_code == 200 and receiver.buffer.held == 4 and receiver.sink.traces == []
    groups = receiver.buffer.settled(time.monotonic() + 6)  # the settle window releases it
    asyncio.run(receiver.publish(groups, []))
    assert len(receiver.sink.traces) == 1 and receiver.buffer.held == 0
    assert receiver.sink.traces[0].final_response == "Order 1001 ships tomorrow."
