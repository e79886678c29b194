"""The Faust worker: a thin adapter around ``Pipeline`` (the pure step), ``streams.encoding``, a ``Publisher``
(Kafka output) and ``DeltaSink``.

Guarantee: at-least-once from Kafka plus idempotent Delta commits. Per batch the worker (1) runs the pure step,
(2) publishes judged traces and dead letters and waits for the broker's acks, (3) commits the rows to Delta with
one transaction id per source partition, and only then (4) lets Faust ack the events so their offsets may be
committed. A crash anywhere replays the batch; step (3) skips what is already in the table. A batch that raises
stops the process before Faust can commit its offsets (``_stop_uncommitted``). Agent concurrency is 1
(faust-streaming #606) and Faust's exactly_once is not used (#323, #517).
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import faust
from faust.sensors import Monitor
from prometheus_client import CollectorRegistry

from connectors.delta_sink import DeltaSink, table_sink
from connectors.kafka import Publisher, faust_broker_kwargs, read_committed_transport, spine_producer
from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.tables import TRACES_TABLE
from schemas.topics import DLQ, JUDGED, TRACES
from schemas.trace import OWN_JSON
from schemas.verdict import JudgedTrace
from streams.encoding import encode_event, summarize, to_row
from streams.metrics import BatchTally, PipelineMetrics
from streams.pipeline import Pipeline

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs

log = logging.getLogger("alignloop.worker")


class TraceHandler:
    """What the spine does with one batch of records; testable without a running worker."""

    def __init__(self, settings: "Settings", pipeline: Pipeline, sink: DeltaSink, metrics: PipelineMetrics,
                 out: Publisher, send: Any = None):
        self.pipeline, self.sink, self.metrics, self.out = pipeline, sink, metrics, out
        self.send = send  # the hooks' output: async (topic, key, value, headers=None, partition=None) -> future
        self.judged_topic = settings.topic(JUDGED)
        self.dlq_topic = settings.topic(DLQ)
        self.max_event_bytes = settings.max_event_bytes
        self.hooks: list[Any] = []  # extra per-batch consumers of judged traces (escalation, curation, drift)

    async def handle(self, batch: Sequence[Record]) -> int:
        """Step, publish, hooks, Delta commit. Returns rows landed."""
        started = time.perf_counter()
        fresh = [r for r in batch if self.sink.is_new(r)]  # replayed records: already in the table
        if len(fresh) < len(batch):
            self.metrics.skipped.labels(TRACES_TABLE).inc(len(batch) - len(fresh))
        # Judged traces keep their source partition number (when traces.judged has that many partitions), so each
        # judged partition carries one source partition in offset order: the monitor's idempotent sinks (one Delta
        # transaction per source partition) then never see a source offset go backwards, keyed or not.
        n_judged = await self.out.partitions(self.judged_topic) if fresh else 0
        tally, judged = self.metrics.tally(), []
        for record, outcome in zip(fresh, self.pipeline.process_batch(fresh)):
            if outcome.__class__ is JudgedTrace:
                outcome = await self._emit(record, outcome, n_judged, tally, judged)
            if outcome is not None:
                tally.add(outcome)
                await self.out.send(self.dlq_topic, record.key, record.value, headers=outcome.headers())
                self.sink.add(None, record)  # no row, but its offset is done
        tally.flush()
        for hook in self.hooks:
            self.out.expect(await hook(judged))
        await self.out.drain()  # downstream has it before the table says it is done
        step_s = time.perf_counter() - started
        self.metrics.records_in.labels("sink").inc(self.sink.pending)
        written = await asyncio.to_thread(self.sink.flush)
        if written:
            self.metrics.records_out.labels("sink").inc(written)
            self.metrics.batch_rows.labels(TRACES_TABLE).observe(written)
            self.metrics.commit_seconds.labels(TRACES_TABLE).observe(self.sink.stats.last_commit_s)
            self.metrics.landed_ts.labels(TRACES_TABLE).set(time.time())
        self.metrics.batch_seconds.observe(step_s)
        return written

    async def _emit(self, record: Record, j: JudgedTrace, n_judged: int, tally: BatchTally,
                    judged: list[JudgedTrace]) -> DeadLetter | None:
        """Publish a judged trace and queue its row; an event too large to publish is the record's dead letter."""
        event = encode_event(j)
        if len(event) > self.max_event_bytes:
            return self.pipeline.dead_letter(record, stage="sink", reason="output_too_large", error=(
                f"the judged event is {len(event)} bytes; the limit is {self.max_event_bytes} (max_event_bytes)"))
        summary = summarize(j.verdicts)  # once for the row and the metrics
        tally.add(j, summary)
        if self.hooks:  # the spine role has no hooks: no outcome outlives its row and event
            judged.append(j)
        self.sink.add(to_row(j, summary), record)
        await self.out.send(self.judged_topic, record.key, event,
                            partition=record.partition if record.partition < n_judged else None)
        return None


def _stop_uncommitted(what: str, exc: BaseException) -> NoReturn:
    """Stop the process without committing the failed batch's offsets. Faust acks a ``take_events`` batch in the
    generator's ``finally`` (also when the body raises) and commits acked offsets on the way down (``app.crash``
    stops the consumer, whose ``on_stop`` commits; so does ``on_task_error``): raising would lose the batch. Exiting
    here skips both; the supervisor restarts the worker, the batch is replayed, and the idempotent sinks skip what
    had landed (as after ``kill -9``)."""
    log.critical("%s; stopping the worker without committing its offsets: %r", what, exc, exc_info=exc)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)


class MonitorHandler:
    """The monitor role: drift, escalation and curation hooks over batches read from ``traces.judged``."""

    def __init__(self, settings: "Settings", send: Any, registry: CollectorRegistry):
        self.settings = settings
        self.send = send
        self.hooks: list[Any] = []
        from prometheus_client import Counter

        self.invalid = Counter("alignloop_monitor_invalid_total", "Unreadable records on traces.judged.",
                               registry=registry)

    async def handle(self, values: Sequence[bytes]) -> int:
        judged = []
        for v in values:
            try:
                judged.append(JudgedTrace.model_validate_json(v, context=OWN_JSON))  # the spine wrote it
            except ValueError as exc:  # written by our own spine: only a version skew gets here
                self.invalid.inc()
                log.warning("skipping an unreadable judged trace: %s", str(exc)[:200])
        futures: list[Any] = []
        for hook in self.hooks:
            futures.extend(await hook(judged))
        if futures:
            await asyncio.gather(*futures)
        return len(judged)


ROLES = ("all", "spine", "monitor")


class LeanMonitor(Monitor):
    """Faust's built-in Monitor keeps per-event statistics for its web UI (disabled here) at several Python calls
    per message; our Prometheus metrics are kept per batch instead, so the per-message hooks do nothing."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass


def _install_hooks(app: faust.App, target: Any, settings: "Settings", registry: CollectorRegistry,
                   configs: "AreaConfigs") -> None:
    from streams.curation.sink import install as install_curation  # sft_examples + candidate preferences to Delta
    from streams.drift.wiring import install as install_drift  # drift monitors, calibration, retrain trigger
    from streams.escalation.wiring import install as install_escalation  # learning judge + judge.escalations

    install_drift(app, target, settings, registry, configs.drift)
    install_escalation(app, target, settings, registry, configs.judges)
    install_curation(target, settings, configs)


def create_app(settings: "Settings", configs: "AreaConfigs", *, registry: CollectorRegistry | None = None,
               pipeline: Pipeline | None = None, role: str = "all") -> tuple[faust.App, Any]:
    """The worker app. ``spine``: validate → scrub → fast judges → traces.judged + Delta ``traces``.
    ``monitor``: drift, escalation and curation over ``traces.judged`` (its own consumer group, so it runs as a
    second process on another core). ``all``: both in one process, hooks fed in-line."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    registry = registry or CollectorRegistry()
    app_id = settings.app_id if role != "monitor" else f"{settings.app_id}-monitor"
    datadir = settings.home / ("worker" if role != "monitor" else "worker-monitor")
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        **faust_broker_kwargs(settings),
        datadir=str(datadir),
        key_serializer="raw", value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=1 << 20,
        producer_max_request_size=max(4 << 20, 2 * settings.max_record_bytes, 2 * settings.max_event_bytes),
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.sink_batch_size * 2),
        web_enabled=False,
        topic_disable_leader=True,
        monitor=LeanMonitor(),
    )
    app.transport = read_committed_transport(app)  # agent.traces has transactional writers (the OTLP assembler)

    async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                   partition: int | None = None) -> Any:  # the hooks' output, through Faust's producer
        return await app.producer.send(topic, key, value, partition=partition, timestamp=None, headers=headers)

    if role == "monitor":
        monitor = MonitorHandler(settings, send, registry)
        _install_hooks(app, monitor, settings, registry, configs)

        @app.agent(app.topic(settings.topic(JUDGED), key_type=bytes, value_type=bytes), concurrency=1)
        async def watch(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_flush_interval_s):
                try:
                    await monitor.handle([e.message.value for e in events])
                except (Exception, asyncio.CancelledError) as exc:  # the lake or broker failed, or a stop mid-batch
                    _stop_uncommitted("monitor batch failed", exc)

        return app, monitor

    metrics = PipelineMetrics(registry)
    sink = table_sink(settings, TRACES_TABLE, "traces")
    out = Publisher(lambda: spine_producer(settings))
    handler = TraceHandler(settings, pipeline or Pipeline.from_settings(settings, configs), sink, metrics, out, send)
    if role == "all":
        _install_hooks(app, handler, settings, registry, configs)
    source = app.topic(settings.topic(TRACES), key_type=bytes, value_type=bytes)

    @app.agent(source, concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        await out.start()
        try:
            async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_flush_interval_s):
                batch = [Record(m.topic, m.partition, m.offset, m.key, m.value,
                                int(m.timestamp * 1000) if m.timestamp else None)
                         for m in (e.message for e in events)]
                try:
                    await handler.handle(batch)
                except (Exception, asyncio.CancelledError) as exc:
                    # Not input (that is dead-lettered): the lake or the broker failed, or the worker was stopped
                    # mid-batch (Faust would ack and commit the half-done batch on its way down).
                    _stop_uncommitted("batch failed", exc)
                _update_lag(app, metrics, events)
        finally:
            await out.stop()

    @app.on_partitions_revoked.connect
    async def _on_revoked(app_: faust.App, revoked: Any, **_: Any) -> None:
        sink.refresh()  # another worker may commit these partitions now

    @app.on_partitions_assigned.connect
    async def _on_assigned(app_: faust.App, assigned: Any, **_: Any) -> None:
        sink.refresh()

    app.alignloop_metrics = metrics  # type: ignore[attr-defined]
    return app, handler


def _update_lag(app: faust.App, metrics: PipelineMetrics, events: Sequence[Any]) -> None:
    last: dict[Any, int] = {}
    for e in events:
        last[e.message.tp] = max(e.message.offset, last.get(e.message.tp, -1))
    for tp, offset in last.items():
        try:
            hw = app.consumer.highwater(tp)
        except Exception:  # highwater unknown until the first fetch response
            continue
        if hw is not None:
            metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - offset - 1))
