"""`alignloop ingest otlp`: an OTLP/HTTP receiver (``POST /v1/traces``); its spans become one Trace per agent turn.

Agents point their OTel exporter at it (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:4318/v1/traces``) and
change nothing else. Answers per the OTLP/HTTP spec: 200 with an ExportTraceServiceResponse (``partial_success``
counting the spans dead-lettered by this request), 400 with a google.rpc.Status for a body that is not a request
(nothing accepted; do not retry), 413 for a body over the limit, 415 for another content type, 503 with
Retry-After when Kafka does not take the spans (retryable: the exporter retries with backoff).

The receiver holds nothing: a request is answered 200 only after Kafka acknowledged its spans on
``ingest.otlp_spans`` (one record per OTel trace, keyed by trace id) and its dead letters, so ``kill -9`` loses
nothing it acknowledged. The turn assembler (``alignloop.ingest.assembler``; in this process unless
``--no-assemble``) groups them into turns and publishes them to ``agent.traces`` exactly once.
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import zlib
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alignloop.ingest.sink import IngestSink, dead_letter
from streams.ingest.otlp import PayloadError, Rejected, Span, decode_request, response, spans_of, status_body

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "otlp:/v1/traces"


class OtlpReceiver:
    def __init__(self, settings: "Settings", *, settle_s: float = 5.0, max_body_bytes: int = 32 << 20,
                 assemble: bool = True, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.settle_s = settle_s
        self.assemble = assemble  # run the turn assembler in this process (else `alignloop ingest assemble`)
        self.max_body_bytes = max_body_bytes
        self.registry = registry or CollectorRegistry()
        self.spans = Counter("alignloop_ingest_spans", "OTLP spans received, by outcome (accepted | rejected)",
                             ["outcome"], registry=self.registry)
        self.turns = Counter("alignloop_ingest_turns", "Turns published to agent.traces, by source", ["source"],
                             registry=self.registry)
        self.requests = Counter("alignloop_ingest_requests", "OTLP requests, by HTTP status", ["status"],
                                registry=self.registry)
        self.sink: IngestSink | None = None
        self.ack_timeout_s = 30.0  # Kafka not acknowledging within this: 503, the exporter retries

    async def publish(self, spans: list[Span], rejected: list[Rejected]) -> None:
        """Send the request's spans to ingest.otlp_spans (one record per OTel trace) and its rejected spans to the
        DLQ, and wait for every ack: only then is the request answered 200."""
        assert self.sink is not None
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for s in spans:
            by_trace.setdefault(s.trace_id, []).append(s.to_dict())
        futures = []  # this call's deliveries only: concurrent requests wait for their own acks, not each other's
        for tid, group in by_trace.items():
            value = json.dumps({"schema_version": 1, "kind": "spans", "trace_id": tid, "spans": group}, default=str).encode()
            futures.append(await self.sink.spans(tid, value))
        for r in rejected:
            futures.append(await self.sink.dead(dead_letter(source=SOURCE, reason=r.reason, error=r.error,
                                                            key=r.span.trace_id.encode(), value=r.span.to_json())))
        self.sink.forget()
        for f in futures:
            await f

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
        try:
            await asyncio.wait_for(self.publish(spans, rejected), self.ack_timeout_s)
        except Exception as exc:  # Kafka unavailable: nothing acknowledged; the exporter retries the whole request
            log.warning("publishing to Kafka failed: %s", exc)
            return 503, Response(f"could not publish to Kafka ({type(exc).__name__}); retry later".encode(),
                                 status_code=503, headers={"Retry-After": "5"})
        self.spans.labels("accepted").inc(len(spans))
        self.spans.labels("rejected").inc(len(rejected))
        reasons = sorted({f"{r.reason}: {r.error}" for r in rejected})
        msg = (f"{len(rejected)} span(s) dead-lettered to agent.traces.dlq: " + "; ".join(reasons[:3])
               if rejected else "")
        return 200, response(len(rejected), msg, as_json=as_json)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4")

    def app(self) -> Starlette:
        from connectors.kafka import producer

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette):  # noqa: ANN202
            async with producer(self.settings) as prod:
                self.sink = IngestSink(self.settings, prod)
                task = None
                if self.assemble:
                    from alignloop.ingest.assembler import Assembler

                    task = asyncio.create_task(Assembler(self.settings, settle_s=self.settle_s,
                                                         turns_counter=self.turns).run())
                    task.add_done_callback(_log_end)
                try:
                    yield
                finally:
                    if task is not None:  # nothing to drain: what was acknowledged is in ingest.otlp_spans
                        task.cancel()
                        with contextlib.suppress(BaseException):
                            await task

        return Starlette(routes=[Route("/v1/traces", self.handle, methods=["POST"]),
                                 Route("/metrics", self.metrics, methods=["GET"])], lifespan=lifespan)


def _log_end(task: "asyncio.Task[None]") -> None:
    """The in-process assembler stopped (fenced by another, or failing): the receiver still acknowledges only what
    Kafka holds, and any assembler started later publishes it."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the turn assembler stopped: %r; spans keep landing on ingest.otlp_spans, run "
                  "`alignloop ingest assemble` to publish them", task.exception())


def serve(settings: "Settings", *, host: str, port: int, settle_s: float, assemble: bool = True) -> None:
    import uvicorn

    receiver = OtlpReceiver(settings, settle_s=settle_s, assemble=assemble)
    uvicorn.run(receiver.app(), host=host, port=port, log_level="warning", lifespan="on")
