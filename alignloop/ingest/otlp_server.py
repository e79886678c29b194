"""`alignloop ingest otlp`: an OTLP/HTTP receiver (``POST /v1/traces``) publishing one Trace per agent turn.

Agents point their OTel exporter at it (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:4318/v1/traces``) and
change nothing else. Answers per the OTLP/HTTP spec: 200 with an ExportTraceServiceResponse (``partial_success``
counting the spans dead-lettered by this request), 400 with a google.rpc.Status for a body that is not a request
(nothing accepted; do not retry), 413 for a body over the limit, 415 for another content type, 503 when Kafka or
the buffer cannot take the spans (retryable: the exporter retries with backoff). A request is answered only after
Kafka acknowledged every turn it completed.
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
import zlib
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alignloop.ingest.sink import IngestSink, dead_letter
from streams.ingest.genai import map_otel_trace
from streams.ingest.otlp import PayloadError, Rejected, Span, decode_request, response, spans_of, status_body
from streams.ingest.turns import TurnBuffer

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "otlp:/v1/traces"


class OtlpReceiver:
    def __init__(self, settings: "Settings", *, settle_s: float = 5.0, max_body_bytes: int = 32 << 20,
                 max_spans: int = 200_000, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.buffer = TurnBuffer(settle_s=settle_s, max_spans=max_spans)
        self.max_body_bytes = max_body_bytes
        self.registry = registry or CollectorRegistry()
        self.spans = Counter("alignloop_ingest_spans", "OTLP spans received, by outcome (accepted | rejected)",
                             ["outcome"], registry=self.registry)
        self.turns = Counter("alignloop_ingest_turns", "Turns published to agent.traces, by source", ["source"],
                             registry=self.registry)
        self.requests = Counter("alignloop_ingest_requests", "OTLP requests, by HTTP status", ["status"],
                                registry=self.registry)
        self.sink: IngestSink | None = None

    async def publish(self, groups: list[list[Span]], rejected: list[Rejected]) -> list[Rejected]:
        """Map complete OTel traces, send turns and dead letters, wait for the acks. Returns every rejected span."""
        assert self.sink is not None
        out = list(rejected)
        n = 0
        futures = []  # this call's deliveries only: concurrent requests wait for their own acks, not each other's
        for spans in groups:
            traces, bad = map_otel_trace(spans)
            for t in traces:
                futures.append(await self.sink.trace(t))
            n += len(traces)
            out += bad
        for r in out:
            futures.append(await self.sink.dead(dead_letter(source=SOURCE, reason=r.reason, error=r.error,
                                                            key=r.span.trace_id.encode(), value=r.span.to_json())))
        self.sink.forget()
        for f in futures:
            await f
        self.turns.labels("otlp").inc(n)
        return out

    async def handle(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "application/x-protobuf")
        as_json = ctype.split(";")[0].strip().lower() == "application/json"
        status, body = await self._handle(request, ctype, as_json)
        self.requests.labels(str(status)).inc()
        if isinstance(body, Response):
            return body
        payload, media = body
        return Response(payload, status_code=status, media_type=media)

    async def _handle(self, request: Request, ctype: str, as_json: bool) -> tuple[int, Any]:
        raw = await request.body()
        if len(raw) > self.max_body_bytes:
            return 413, status_body(f"body of {len(raw)} bytes is over the {self.max_body_bytes}-byte limit; "
                                    "lower the exporter's batch size", as_json=as_json)
        encoding = request.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            try:
                raw = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                return 400, status_body(f"body is not valid {encoding}: {exc}", as_json=as_json)
        try:
            req = decode_request(raw, ctype)
        except PayloadError as exc:
            code = 415 if str(exc).startswith("unsupported Content-Type") else 400
            return code, status_body(str(exc), as_json=as_json)
        spans, rejected = spans_of(req)
        if not self.buffer.room_for(len(spans)):
            return 503, Response(b"turn buffer full; retry later", status_code=503, headers={"Retry-After": "2"})
        mine = {s.span_id for s in spans} | {r.span.span_id for r in rejected}
        done = self.buffer.add(spans, time.monotonic())
        try:
            bad = await self.publish(done, rejected)
        except Exception as exc:  # Kafka unavailable: the exporter retries the whole request
            log.warning("publishing to Kafka failed: %s", exc)
            self.buffer.restore(done, time.monotonic())  # spans of earlier requests are in there too
            return 503, Response(f"could not publish to Kafka ({type(exc).__name__}); retry later".encode(),
                                 status_code=503, headers={"Retry-After": "5"})
        ours = [r for r in bad if r.span.span_id in mine]
        self.spans.labels("accepted").inc(len(spans) + len(rejected) - len(ours))
        self.spans.labels("rejected").inc(len(ours))
        reasons = sorted({f"{r.reason}: {r.error}" for r in ours})
        msg = f"{len(ours)} span(s) dead-lettered to agent.traces.dlq: " + "; ".join(reasons[:3]) if ours else ""
        return 200, response(len(ours), msg, as_json=as_json)

    async def settle_loop(self, every_s: float = 0.5) -> None:
        """Publish turns whose OTel trace went quiet without a root span."""
        while True:
            await asyncio.sleep(every_s)
            groups = self.buffer.settled(time.monotonic())
            if not groups:
                continue
            try:
                await self.publish(groups, [])
            except Exception as exc:  # keep them for the next round
                log.warning("publishing settled turns failed (%s); retrying", exc)
                self.buffer.restore(groups, time.monotonic())

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4")

    def app(self) -> Starlette:
        from connectors.kafka import producer

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette):  # noqa: ANN202
            async with producer(self.settings) as prod:
                self.sink = IngestSink(self.settings, prod)
                task = asyncio.create_task(self.settle_loop())
                try:
                    yield
                finally:
                    task.cancel()
                    left = self.buffer.drain()  # shutdown: publish what is held rather than lose it
                    if left:
                        await self.publish(left, [])

        return Starlette(routes=[Route("/v1/traces", self.handle, methods=["POST"]),
                                 Route("/metrics", self.metrics, methods=["GET"])], lifespan=lifespan)


def serve(settings: "Settings", *, host: str, port: int, settle_s: float) -> None:
    import uvicorn

    receiver = OtlpReceiver(settings, settle_s=settle_s)
    uvicorn.run(receiver.app(), host=host, port=port, log_level="warning", lifespan="on")
