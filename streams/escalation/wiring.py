"""Attach the learning judge and the escalator to the stream worker (called from ``streams.app.create_app``).

Per batch of judged traces the hook scores each with the learning judge, offers it to the escalator, and
publishes what the escalator admits to ``judge.escalations`` (an ``EscalationEvent``, keyed by trace id); a timer
drains candidates that wait while traffic is quiet. Labels on ``feedback.labels`` are followed group-less (like
the calibration join) and taught to the learning judge. Metrics: escalation rate, per-tier budget left, drops,
learning-judge agreement (Cohen's kappa).

Exactly once per trace across restarts: every escalation record carries the escalator's state after the drain
that admitted it (header ``alignloop.escalator``: budgets, counters, how far decisions reach per source
partition). The output is the checkpoint, so the two cannot disagree: a restarted monitor reads the newest one
back from the tail of ``judge.escalations``, skips the traces Kafka redelivers that were already decided, and
spends the budget it had left. The clock is the stream's (``processed_at``; see ``now``), so the per-minute budget
is per minute of traffic whatever the restarts. What was still pending at the last checkpoint is offered again
when Kafka redelivers it; what was admitted after it but not acknowledged by the broker is lost (at most one
drain's worth), never duplicated. The topic must be writable by the monitor only: a forged checkpoint runs
nothing and is validated, but could make the escalator skip traces.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.preference import Label
from schemas.topics import ESCALATIONS, FEEDBACK_DLQ, LABELS
from streams.escalation.escalator import Escalation, Escalator, EscalatorState
from streams.feedback import FeedbackDeadLetters, parse
from streams.judges.base import JudgeContext
from streams.judges.config import JudgesConfig
from streams.hifi.step import EscalationEvent
from streams.judges.learning import LearningJudge

if TYPE_CHECKING:
    import faust

    from schemas.settings import Settings
    from schemas.verdict import JudgedTrace

log = logging.getLogger("alignloop.escalation")
STATE_HEADER = "alignloop.escalator"
TAIL = 200  # records read back per partition of judge.escalations to find the newest checkpoint


class Checkpoint(BaseModel):
    """The ``alignloop.escalator`` header: which monitor wrote it, in what order, and its escalator's state."""

    model_config = ConfigDict(extra="forbid", strict=True)
    writer: str = Field(..., max_length=512)
    seq: int = Field(..., ge=1, le=2**62)
    state: EscalatorState


class EscalationMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.seen = Counter("alignloop_escalation_traces_total", "Judged traces the escalator saw.",
                            registry=registry)
        self.escalated = Counter("alignloop_escalation_escalated_total", "Traces escalated.", ["tier"],
                                 registry=registry)
        self.dropped = Counter("alignloop_escalation_dropped_total", "Candidates not escalated.", ["reason"],
                               registry=registry)
        self.rate = Gauge("alignloop_escalation_rate_ratio", "Escalated / seen since start.", registry=registry)
        self.budget = Gauge("alignloop_escalation_budget_tokens", "Budget tokens left.", ["tier", "window"],
                            registry=registry)
        self.labels = Counter("alignloop_learning_judge_labels_total", "Labels the learning judge learned.",
                              registry=registry)
        self.kappa = Gauge("alignloop_learning_judge_kappa", "Learning judge agreement with labels (Cohen's kappa).",
                           ["window"], registry=registry)
        self.bad_labels = Counter("alignloop_learning_judge_labels_invalid_total", "Labels the learning judge "
                                  "could not read, by reason.", ["reason"], registry=registry)
        self.replayed = Counter("alignloop_escalation_replayed_total", "Traces read again after a restart and "
                                "skipped: already decided.", registry=registry)
        self.restores = Counter("alignloop_escalation_state_restores_total", "Starts, by whether the escalator "
                                "continued from a checkpoint.", ["result"], registry=registry)
        self.invalid = Counter("alignloop_escalation_state_invalid_total", "Unreadable escalator checkpoints "
                               "skipped at start-up.", registry=registry)


class EscalationHook:
    """``TraceHandler.hooks`` member: ``await hook(judged) -> list of delivery futures``."""

    def __init__(self, cfg: JudgesConfig, send: Any, topic: str, metrics: EscalationMetrics,
                 clock: Any = time.monotonic, *, writer: str = "", checkpoint: Checkpoint | None = None):
        self.cfg = cfg
        self.learner = LearningJudge(**cfg.learning.judge_kwargs()) if cfg.learning.enabled else None
        self.escalator = Escalator(cfg.escalation)
        self.send, self.topic, self.metrics, self.clock = send, topic, metrics, clock
        self.writer, self.seq = writer, 0
        self.labels_topic, self.dead_letters = "feedback.labels", None  # set by install
        self._dropped: dict[str, int] = {}
        self._now = 0.0  # the stream's time: newest processed_at seen
        self._wall = clock()  # wall time when _now last moved
        if checkpoint is not None:
            self.escalator.restore(checkpoint.state)
            self.seq, self._now = checkpoint.seq, checkpoint.state.clock
            for name, n in self.escalator.counts.items():
                if name.startswith("dropped_"):
                    self._dropped[name] = n
        metrics.restores.labels("restored" if checkpoint is not None else "fresh").inc()
        if checkpoint is not None:
            log.warning("escalator continues from checkpoint %d (budget tokens %s)", checkpoint.seq,
                        {t: round(b[0], 1) for t, b in checkpoint.state.buckets.items()})

    def now(self) -> float:
        """Stream time. While no trace arrives it runs on with the wall clock for at most ``window_s``: enough
        for waiting candidates to drain, never a budget refill for time without traffic (a monitor waiting
        for its partitions after a restart would otherwise come back with full buckets)."""
        return self._now + min(self.cfg.escalation.window_s, max(0.0, self.clock() - self._wall))

    async def __call__(self, judged: list["JudgedTrace"]) -> list[Any]:
        if judged:
            newest = max(jt.processed_at.timestamp() for jt in judged)
            if newest > self._now:
                self._now, self._wall = newest, self.clock()
        now = self.now()
        lj = self.learner
        for jt in judged:
            src = jt.source
            seen = self.escalator.replay((src.topic, src.partition, src.offset))
            if seen == "skip":
                self.metrics.replayed.inc()
                continue
            learned = None
            if lj is not None:
                x = lj.features(jt.trace, JudgeContext(pii=jt.pii), jt.verdicts)
                lj.remember(jt.trace.trace_id, x)
                if lj.n_labels >= lj.min_labels:
                    learned = lj.predict_x(x)
            a = self.escalator.assess(jt.trace.trace_id, jt.verdicts, jt.outcome, learned)
            self.escalator.offer(jt, a, now, source=(src.topic, src.partition, src.offset), again=seen == "again")
        self.metrics.seen.inc(len(judged))
        return await self.publish(self.escalator.drain(now))

    async def publish(self, admitted: list[Escalation]) -> list[Any]:
        futures = []
        headers = None
        if admitted:
            self.seq += 1
            cp = Checkpoint(writer=self.writer, seq=self.seq, state=self.escalator.state(self._now))
            headers = [(STATE_HEADER, cp.model_dump_json().encode())]
        for e in admitted:
            jt = e.payload
            ev = EscalationEvent(judged=jt, priority=e.assessment.priority, reasons=e.assessment.reasons,
                                 tier=e.assessment.tier, audit=e.assessment.audit)
            futures.append(await self.send(self.topic, jt.trace.trace_id.encode(), ev.model_dump_json().encode(),
                                           headers=headers))
            self.metrics.escalated.labels(e.assessment.tier).inc()
        self._export()
        return futures

    async def tick(self) -> list[Any]:
        """Drain candidates that waited while no batch arrived."""
        return await self.publish(self.escalator.drain(self.now()))

    def _export(self) -> None:
        c = self.escalator.counts
        for reason in ("dropped_low_priority", "dropped_over_budget", "dropped_overflow"):
            delta = c[reason] - self._dropped.get(reason, 0)
            if delta:
                self.metrics.dropped.labels(reason.removeprefix("dropped_")).inc(delta)
                self._dropped[reason] = c[reason]
        self.metrics.rate.set(self.escalator.stats()["escalation_rate"])
        for tier, left in self.escalator.budget_left(self.now()).items():
            for window, tokens in left.items():
                self.metrics.budget.labels(tier, window).set(tokens)

    async def on_labels(self, records: list[tuple[Any, ...]]) -> list[Any]:
        """records: (partition, offset, value[, key]) from feedback.labels. A bad one is counted and, when this
        hook is the worker's dead-letterer (``dead_letters``: no drift hook reads the labels), sent to
        feedback.dlq; the drift hook does it otherwise, so a bad label is dead-lettered once."""
        if self.learner is None:
            return []
        futures = []
        for partition, offset, value, *rest in records:
            label = parse(Label, value)
            if isinstance(label, tuple):
                self.metrics.bad_labels.labels(label[0]).inc()
                if self.dead_letters is not None:
                    futures.append(await self.dead_letters(value, rest[0] if rest else None, self.labels_topic,
                                                           partition, offset, *label))
                continue
            if self.learner.learn(label.trace_id, label.passed):
                self.metrics.labels.inc()
        s = self.learner.stats()
        self.metrics.kappa.labels("all").set(s["kappa"])
        self.metrics.kappa.labels("rolling").set(s["rolling_kappa"])
        return futures


Headers = list[tuple[str, bytes]]


def newest_checkpoint(records: list[Headers], writer: str, metrics: EscalationMetrics) -> Checkpoint | None:
    """The newest valid checkpoint of ``writer`` among records' headers (pure); unreadable ones are counted."""
    best: Checkpoint | None = None
    for headers in records:
        for name, raw in headers or ():
            if name != STATE_HEADER:
                continue
            try:
                cp = Checkpoint.model_validate_json(raw)
            except (ValidationError, ValueError) as exc:
                metrics.invalid.inc()
                log.warning("skipping an unreadable escalator checkpoint: %s", str(exc).splitlines()[0][:200])
                continue
            if cp.writer == writer and (best is None or cp.seq > best.seq):
                best = cp
    return best


def read_checkpoint(settings: "Settings", topic: str, writer: str, metrics: EscalationMetrics,
                    timeout_s: float = 20.0) -> Checkpoint | None:
    """The newest checkpoint in the last ``TAIL`` records of each partition of ``topic`` (None: start fresh).
    Synchronous, on its own event loop in a helper thread, like the drift state store."""
    from concurrent.futures import ThreadPoolExecutor

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from connectors.kafka import aiokafka_client_kwargs, end_offsets

    async def tail() -> list[Headers]:
        ends = {p: e for p, e in (await end_offsets(settings, topic)).items() if e > 0}
        if not ends:
            return []
        consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20)
        await consumer.start()
        out: list[Headers] = []
        try:
            tps = {TopicPartition(topic, p): e for p, e in ends.items()}
            consumer.assign(list(tps))
            for tp, end in tps.items():
                consumer.seek(tp, max(0, end - TAIL))
            done: set[TopicPartition] = set()
            while len(done) < len(tps):  # until each partition's end (the caller's timeout bounds it)
                got = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for tp, msgs in got.items():
                    out.extend(list(m.headers or ()) for m in msgs)
                    if msgs and msgs[-1].offset + 1 >= tps[tp]:
                        done.add(tp)
        finally:
            await consumer.stop()
        return out

    def run() -> list[Headers]:
        return asyncio.run(asyncio.wait_for(tail(), timeout_s))

    try:
        with ThreadPoolExecutor(1) as pool:
            records = pool.submit(run).result()
    except Exception as exc:  # the broker is down: start fresh rather than not at all, and say so
        log.warning("escalator checkpoint not read from %s (%s); budgets start full", topic, exc)
        return None
    return newest_checkpoint(records, writer, metrics)


def install(app: "faust.App", handler: Any, settings: "Settings", registry: CollectorRegistry,
            cfg: JudgesConfig) -> EscalationHook | None:
    """Register the hook, a drain timer and the label follower (None when escalation is disabled)."""
    from streams.drift.labels import follow_labels

    if not cfg.escalation.enabled:
        return None
    topic, metrics = settings.topic(ESCALATIONS), EscalationMetrics(registry)
    checkpoint = read_checkpoint(settings, topic, settings.app_id, metrics)
    hook = EscalationHook(cfg, handler.send, topic, metrics, writer=settings.app_id, checkpoint=checkpoint)
    hook.labels_topic = settings.topic(LABELS)
    from streams.drift.hook import DriftHook

    if not any(isinstance(h, DriftHook) for h in handler.hooks):  # else the drift hook dead-letters bad labels
        hook.dead_letters = FeedbackDeadLetters(handler.send, settings.topic(FEEDBACK_DLQ), registry)
    handler.hooks.append(hook)
    stop = asyncio.Event()

    @app.timer(interval=cfg.escalation.window_s)
    async def _drain() -> None:
        futures = await hook.tick()
        if futures:
            await asyncio.gather(*futures)

    if hook.learner is not None:
        @app.task
        async def _labels() -> None:
            await follow_labels(settings, settings.topic(LABELS), {}, hook.on_labels, stop)

    @app.on_before_shutdown.connect
    async def _stop(app_: Any, **_: Any) -> None:
        stop.set()

    return hook
