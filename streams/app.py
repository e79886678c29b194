"""The Faust worker: a thin adapter around ``Pipeline`` and ``DeltaSink``.

Guarantee: at-least-once from Kafka plus idempotent Delta commits. Per batch the worker (1) runs the pure step,
(2) publishes judged traces and dead letters and waits for the broker's acks, (3) commits the rows to Delta with
one transaction id per source partition, and only then (4) lets Faust ack the events so their offsets may be
committed. A crash anywhere replays the batch; step (3) skips what is already in the table. Agent concurrency is 1
(faust-streaming #606) and Faust's exactly_once is not used (#323, #517).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

import faust
from faust.sensors import Monitor
from prometheus_client import CollectorRegistry

from connectors.delta_sink import DeltaSink
from connectors.kafka import faust_broker_kwargs
from schemas.dlq import DeadLetter
from schemas.tables import TABLES, TRACES_TABLE
from schemas.topics import DLQ, JUDGED, TRACES
from schemas.verdict import JudgedTrace
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline, encode_event, summarize, to_row

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs

log = logging.getLogger("alignloop.worker")


class TraceHandler:
    """Everything the agent does with one batch of events; testable without a running worker."""

    def __init__(self, settings: "Settings", pipeline: Pipeline, sink: DeltaSink, metrics: PipelineMetrics,
                 send: Any, partitions_for: Any = None, batches: Any = None):
        self.settings = settings
        self.pipeline = pipeline
        self.sink = sink
        self.metrics = metrics
        self.send = send  # async (topic, key, value, headers=None, partition=None) -> awaitable delivery future
        self.partitions_for = partitions_for  # async (topic) -> partition count
        # Producer batches (``.create()``, async ``.send(batch, topic, partition)``): judged traces are appended to
        # one record batch per partition instead of one producer call each, which costs a third as much per record.
        self.batches = batches
        self.judged_topic = settings.topic(JUDGED)
        self.dlq_topic = settings.topic(DLQ)
        self.hooks: list[Any] = []  # extra per-batch consumers of judged traces (escalation, curation, drift)
        self._judged_partitions: int | None = None

    async def _judged_partition_count(self) -> int:
        """Judged traces keep their source partition number (when ``traces.judged`` has that many partitions),
        so each judged partition carries one source partition in offset order: the monitor's idempotent sinks
        (one Delta transaction per source partition) then never see a source offset go backwards, keyed or not."""
        if self._judged_partitions is None:
            n = 0
            if self.partitions_for is not None:
                try:
                    n = await self.partitions_for(self.judged_topic)
                except Exception as exc:  # metadata unavailable: fall back to the key partitioner this batch
                    log.warning("no partition metadata for %s: %s", self.judged_topic, exc)
                    return 0
            self._judged_partitions = n
        return self._judged_partitions

    async def handle(self, batch: Sequence[tuple[str, int, int, bytes | None, bytes]]) -> int:
        """batch: (topic, partition, offset, key, value). Returns rows landed."""
        started = time.perf_counter()
        offsets: dict[tuple[str, int], int] = {}
        for topic, partition, offset, _, _ in batch:
            offsets[(topic, partition)] = max(offset, offsets.get((topic, partition), -1))
        fresh = self.sink.filter_new((t, p, o, (t, p, o, k, v)) for t, p, o, k, v in batch)
        if len(fresh) < len(batch):
            self.metrics.skipped.labels(TRACES_TABLE).inc(len(batch) - len(fresh))
        rows, judged, futures = [], [], []
        tally = self.metrics.tally()
        keep = bool(self.hooks)  # the spine role has no hooks: no outcome outlives its row and event
        n_judged = await self._judged_partition_count() if fresh else 0
        open_batches: dict[int, Any] = {}
        for (topic, partition, offset, key, value), outcome in zip(fresh, self.pipeline.process_batch(fresh)):
            if isinstance(outcome, DeadLetter):
                tally.add(outcome)
                futures.append(await self.send(self.dlq_topic, key, value, headers=outcome.headers()))
                continue
            summary = summarize(outcome.verdicts)  # once for the event, the row and the metrics
            tally.add(outcome, summary)
            if keep:
                judged.append(outcome)
            event = encode_event(outcome, summary)
            rows.append(to_row(outcome, event, summary))
            if partition >= n_judged or self.batches is None:
                futures.append(await self.send(self.judged_topic, key, event, partition=None))
                continue
            pending = open_batches.get(partition)
            if pending is None or pending.append(key=key, value=event, timestamp=None) is None:
                if pending is not None:  # full: send it, start the next one
                    futures.append(await self.batches.send(pending, self.judged_topic, partition))
                pending = open_batches[partition] = self.batches.create()
                if pending.append(key=key, value=event, timestamp=None) is None:  # larger than a whole batch
                    del open_batches[partition]
                    futures.append(await self.send(self.judged_topic, key, event, partition=partition))
        for partition, pending in open_batches.items():
            futures.append(await self.batches.send(pending, self.judged_topic, partition))
        tally.flush()
        for hook in self.hooks:
            futures.extend(await hook(judged))
        if futures:
            await asyncio.gather(*futures)  # downstream has it before the table says it is done
        step_s = time.perf_counter() - started
        self.metrics.records_in.labels("sink").inc(len(rows))
        if offsets:
            written = await asyncio.to_thread(self.sink.write, rows, offsets)
            if written:
                self.metrics.records_out.labels("sink").inc(written)
                self.metrics.batch_rows.labels(TRACES_TABLE).observe(written)
                self.metrics.commit_seconds.labels(TRACES_TABLE).observe(self.sink.stats.last_commit_s)
                self.metrics.landed_ts.labels(TRACES_TABLE).set(time.time())
        self.metrics.batch_seconds.observe(step_s)
        return len(rows)


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
                judged.append(JudgedTrace.model_validate_json(v))
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
        producer_max_request_size=max(4 << 20, 2 * settings.max_record_bytes),
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.sink_batch_size * 2),
        web_enabled=False,
        topic_disable_leader=True,
        monitor=LeanMonitor(),
    )

    async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                   partition: int | None = None) -> Any:
        return await app.producer.send(topic, key, value, partition=partition, timestamp=None, headers=headers)

    async def partitions_for(topic: str) -> int:
        return len(await app.producer._ensure_producer().partitions_for(topic))

    class Batches:  # aiokafka record batches through the app's own producer
        @staticmethod
        def create() -> Any:
            return app.producer._ensure_producer().create_batch()

        @staticmethod
        async def send(batch: Any, topic: str, partition: int) -> Any:
            return await app.producer._ensure_producer().send_batch(batch, topic, partition=partition)

    if role == "monitor":
        monitor = MonitorHandler(settings, send, registry)
        _install_hooks(app, monitor, settings, registry, configs)

        @app.agent(app.topic(settings.topic(JUDGED), key_type=bytes, value_type=bytes), concurrency=1)
        async def watch(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_flush_interval_s):
                try:
                    await monitor.handle([e.message.value for e in events])
                except Exception as exc:  # the lake or broker failed: restart, replay is idempotent
                    log.exception("monitor batch failed; stopping the worker: %s", exc)
                    await app.crash(exc)
                    raise

        return app, monitor

    metrics = PipelineMetrics(registry)
    schema, partition_by = TABLES[TRACES_TABLE]
    sink = DeltaSink(settings.table_uri(TRACES_TABLE), schema, partition_by, name=f"{settings.app_id}-traces",
                     storage_options=settings.lake_storage_options or None, checkpoint_every=settings.checkpoint_every)
    handler = TraceHandler(settings, pipeline or Pipeline.from_settings(settings, configs), sink, metrics, send,
                           partitions_for, Batches)
    if role == "all":
        _install_hooks(app, handler, settings, registry, configs)
    source = app.topic(settings.topic(TRACES), key_type=bytes, value_type=bytes)

    @app.agent(source, concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_flush_interval_s):
            batch = [(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                     for e in events]
            try:
                await handler.handle(batch)
            except Exception as exc:
                # Not input (that is dead-lettered): the lake or the broker failed. Stop the worker so its
                # supervisor restarts it; nothing was acked, and the idempotent sink makes the replay exact.
                log.exception("batch failed; stopping the worker: %s", exc)
                await app.crash(exc)
                raise
            _update_lag(app, metrics, events)

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
