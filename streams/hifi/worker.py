"""The ``alignloop judge`` loop: consume ``judge.escalations``, judge with the LLM, publish labels, preferences
and human-queue items, then commit.

At-least-once: outputs are acknowledged by the broker before the consumer commits the escalations' offsets.
When the endpoint is down, slow, over budget or rate-limited past its retries, the escalation is retried with
backoff (counted) and the batch is not committed until it succeeds, so nothing is lost and the stream worker,
a separate process, is never blocked. A record that is not an escalation goes to the human queue with its raw
text. Label and preference ids are deterministic, so a replay yields identical rows for idempotent sinks.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import ValidationError

from connectors.kafka import aiokafka_client_kwargs, producer
from connectors.llm_judge import BudgetExceeded, LlmJudgeClient, LlmJudgeError
from schemas.escalation import EscalationEvent, HumanQueueItem
from schemas.topics import ESCALATIONS, HUMAN_QUEUE, LABELS, PREFERENCES
from schemas.versions import newer_schema_version
from streams.judges.config import JudgesConfig
from streams.hifi.step import HifiResult, HighFidelityJudge

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger("alignloop.judge")
MAX_WAIT_S = 60.0


class JudgeWorkerMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.handled = Counter("alignloop_judge_escalations_total", "Escalations handled.", ["result"],
                               registry=registry)
        self.failures = Counter("alignloop_judge_endpoint_failures_total",
                                "Attempts that failed transiently (escalation kept and retried).", ["kind"],
                                registry=registry)
        self.waiting = Gauge("alignloop_judge_waiting_escalations", "Escalations waiting on the endpoint/budget.",
                             registry=registry)
        self.spend = Gauge("alignloop_judge_spend_usd_last_hour", "LLM spend over the last hour.", registry=registry)
        self.outputs = Counter("alignloop_judge_outputs_total", "Records published.", ["topic"], registry=registry)


class LlmClientCollector:
    """The LLM client's own counts and in-flight requests, read at every scrape: a hung endpoint shows as stalls
    and an ageing waiting request within one request timeout, before the retries give up."""

    FAILURES = {"timeout": "stalls", "connection": "connection_errors", "rate_limited": "rate_limited",
                "server_error": "server_errors", "malformed": "malformed", "inconsistent": "inconsistent"}

    def __init__(self, client: LlmJudgeClient):
        self.client = client

    def collect(self) -> Iterator[Metric]:
        counts = self.client.counts
        yield CounterMetricFamily("alignloop_judge_llm_requests", "Requests sent to the LLM endpoint.",
                                  value=counts["requests"])
        yield CounterMetricFamily("alignloop_judge_llm_stalls", "Requests cut off at the per-request timeout.",
                                  value=counts["stalls"])
        failures = CounterMetricFamily("alignloop_judge_llm_failures", "Failed requests and rejected replies, by "
                                       "kind (each is retried, or the escalation goes to the human queue).",
                                       labels=["kind"])
        for kind, key in self.FAILURES.items():
            failures.add_metric([kind], counts[key])
        yield failures
        n, age = self.client.waiting()
        yield GaugeMetricFamily("alignloop_judge_llm_waiting_requests", "Requests in flight, waiting for a reply.",
                                value=n)
        yield GaugeMetricFamily("alignloop_judge_llm_waiting_oldest_seconds",
                                "How long the oldest request in flight has waited (0 when none).", value=age)


class JudgeWorker:
    def __init__(self, settings: "Settings", cfg: JudgesConfig, client: LlmJudgeClient,
                 registry: CollectorRegistry | None = None, *, sleep: Any = asyncio.sleep):
        self.settings, self.cfg = settings, cfg
        self.client = client
        self.hf = HighFidelityJudge(client)
        registry = registry or CollectorRegistry()
        self.metrics = JudgeWorkerMetrics(registry)
        registry.register(LlmClientCollector(client))
        self.stop = asyncio.Event()
        self._sleep = sleep
        self.topics = {k: settings.topic(k) for k in (ESCALATIONS, LABELS, PREFERENCES, HUMAN_QUEUE)}
        self._sft: Any = None

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        if self.stop.is_set():
            raise asyncio.CancelledError("stopping; the escalation stays uncommitted and is replayed")

    async def process(self, value: bytes | None) -> HifiResult:
        """One record to its outputs; transient failures are retried here until they succeed."""
        try:
            ev = EscalationEvent.model_validate_json(value or b"")
        except (ValidationError, ValueError) as exc:
            # kept for a person with its raw text; a newer producer's record says so, to prompt an upgrade
            newer = isinstance(exc, ValidationError) and newer_schema_version(exc) is not None
            self.metrics.handled.labels("unsupported_version" if newer else "bad_record").inc()
            raw = (value or b"").decode("utf-8", "replace")[:100_000]
            reason = "unsupported_schema_version" if newer else "bad_escalation_record"
            return HifiResult(human=[HumanQueueItem(trace_id="", reason=reason, raw=raw,
                                                    llm_rationale=str(exc).splitlines()[0][:500])])
        attempt = 0
        while True:
            try:
                out = await self.hf.handle(ev)
                self.metrics.handled.labels("human" if out.human and not out.labels else "labelled").inc()
                return out
            except BudgetExceeded as exc:
                self.metrics.failures.labels("budget").inc()
                wait = min(MAX_WAIT_S, exc.retry_after_s)
            except LlmJudgeError as exc:
                self.metrics.failures.labels("endpoint").inc()
                wait = min(MAX_WAIT_S, self.cfg.llm.backoff_base_s * 2 ** min(attempt, 10))
                log.warning("LLM judge unavailable (%s); escalation %s waits %.1fs", exc,
                            ev.judged.trace.trace_id, wait)
            attempt += 1
            self.metrics.waiting.inc()
            try:
                await self._wait(wait)
            finally:
                self.metrics.waiting.dec()

    async def publish(self, prod: Any, results: list[HifiResult]) -> int:
        futures = []
        for r in results:
            for lab in r.labels:
                futures.append(await prod.send(self.topics[LABELS], lab.model_dump_json().encode(),
                                               key=lab.trace_id.encode()))
                self.metrics.outputs.labels(LABELS).inc()
            for p in r.preferences:
                futures.append(await prod.send(self.topics[PREFERENCES], p.model_dump_json().encode(),
                                               key=p.pref_id.encode()))
                self.metrics.outputs.labels(PREFERENCES).inc()
            for h in r.human:
                futures.append(await prod.send(self.topics[HUMAN_QUEUE], h.model_dump_json().encode(),
                                               key=h.trace_id.encode() or None))
                self.metrics.outputs.labels(HUMAN_QUEUE).inc()
        if futures:
            await asyncio.gather(*futures)
        return len(futures)

    def land_sft(self, msgs: list[Any], results: list[HifiResult]) -> int:
        """SFT rows for traces the LLM passed with high scores, one Delta commit per batch, idempotent by the
        escalations' offsets (a replayed batch lands nothing twice)."""
        from streams.curation.rules import sft_row_from_label

        if self._sft is None:
            from schemas.tables import SFT_EXAMPLES_TABLE
            from connectors.delta_sink import table_sink

            self._sft = table_sink(self.settings, SFT_EXAMPLES_TABLE, "llm-sft")
        for m, r in zip(msgs, results):  # m: the consumed escalation record (topic, partition, offset)
            if not self._sft.is_new(m):
                continue
            rows = [] if r.event is None else [sft_row_from_label(r.event.judged, lab) for lab in r.labels]
            self._sft.add(None, m)  # the offset advances even when no row comes of it
            for row in rows:
                if row is not None:
                    self._sft.add(row, m)
        return self._sft.flush()

    async def run(self, *, max_idle_s: float | None = None) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(self.topics[ESCALATIONS], **aiokafka_client_kwargs(self.settings),
                                    group_id=f"{self.settings.app_id}-judge", enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20)
        await consumer.start()
        idle = 0.0
        try:
            async with producer(self.settings) as prod:
                while not self.stop.is_set():
                    got = await consumer.getmany(timeout_ms=500, max_records=self.cfg.llm.concurrency * 4)
                    msgs = [m for part in got.values() for m in part]
                    if not msgs:
                        idle += 0.5
                        if max_idle_s is not None and idle >= max_idle_s:
                            break
                        continue
                    idle = 0.0
                    try:
                        results = await asyncio.gather(*(self.process(m.value) for m in msgs))
                    except asyncio.CancelledError:
                        break  # stopping mid-retry: nothing committed, the batch is replayed
                    await self.publish(prod, list(results))
                    await asyncio.to_thread(self.land_sft, msgs, list(results))
                    await consumer.commit()
                    self.metrics.spend.set(self.client.spent_last_hour())
        finally:
            await consumer.stop()
            await self.client.aclose()
