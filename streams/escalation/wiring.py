"""Attach the learning judge and the escalator to the stream worker (called from ``streams.app.create_app``).

Per batch of judged traces the hook scores each with the learning judge, offers it to the escalator, and
publishes what the escalator admits to ``judge.escalations`` (an ``EscalationEvent``, keyed by trace id); a timer
drains candidates that wait while traffic is quiet. Labels on ``feedback.labels`` are followed group-less (like
the calibration join) and taught to the learning judge. Metrics: escalation rate, per-tier budget left, drops,
learning-judge agreement (Cohen's kappa).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.preference import Label
from schemas.topics import ESCALATIONS, LABELS
from streams.escalation.escalator import Escalation, Escalator
from streams.judges.base import JudgeContext
from streams.judges.config import JudgesConfig
from streams.hifi.step import EscalationEvent
from streams.judges.learning import LearningJudge

if TYPE_CHECKING:
    import faust

    from schemas.settings import Settings
    from schemas.verdict import JudgedTrace

log = logging.getLogger("alignloop.escalation")


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


class EscalationHook:
    """``TraceHandler.hooks`` member: ``await hook(judged) -> list of delivery futures``."""

    def __init__(self, cfg: JudgesConfig, send: Any, topic: str, metrics: EscalationMetrics,
                 clock: Any = time.monotonic):
        self.cfg = cfg
        self.learner = LearningJudge(**cfg.learning.judge_kwargs()) if cfg.learning.enabled else None
        self.escalator = Escalator(cfg.escalation, now=clock())
        self.send, self.topic, self.metrics, self.clock = send, topic, metrics, clock
        self._dropped: dict[str, int] = {}

    async def __call__(self, judged: list["JudgedTrace"]) -> list[Any]:
        now = self.clock()
        lj = self.learner
        for jt in judged:
            learned = None
            if lj is not None:
                x = lj.features(jt.trace, JudgeContext(pii=jt.pii), jt.verdicts)
                lj.remember(jt.trace.trace_id, x)
                if lj.n_labels >= lj.min_labels:
                    learned = lj.predict_x(x)
            a = self.escalator.assess(jt.trace.trace_id, jt.verdicts, jt.outcome, learned)
            self.escalator.offer(jt, a, now)
        self.metrics.seen.inc(len(judged))
        return await self.publish(self.escalator.drain(now))

    async def publish(self, admitted: list[Escalation]) -> list[Any]:
        futures = []
        for e in admitted:
            jt = e.payload
            ev = EscalationEvent(judged=jt, priority=e.assessment.priority, reasons=e.assessment.reasons,
                                 tier=e.assessment.tier, audit=e.assessment.audit)
            futures.append(await self.send(self.topic, jt.trace.trace_id.encode(), ev.model_dump_json().encode()))
            self.metrics.escalated.labels(e.assessment.tier).inc()
        self._export()
        return futures

    async def tick(self) -> list[Any]:
        """Drain candidates that waited while no batch arrived."""
        return await self.publish(self.escalator.drain(self.clock()))

    def _export(self) -> None:
        c = self.escalator.counts
        for reason in ("dropped_low_priority", "dropped_over_budget", "dropped_overflow"):
            delta = c[reason] - self._dropped.get(reason, 0)
            if delta:
                self.metrics.dropped.labels(reason.removeprefix("dropped_")).inc(delta)
                self._dropped[reason] = c[reason]
        self.metrics.rate.set(self.escalator.stats()["escalation_rate"])
        for tier, left in self.escalator.budget_left(self.clock()).items():
            for window, tokens in left.items():
                self.metrics.budget.labels(tier, window).set(tokens)

    async def on_labels(self, records: list[tuple[int, int, bytes]]) -> list[Any]:
        if self.learner is None:
            return []
        for _, _, value in records:
            try:
                label = Label.model_validate_json(value)
            except ValueError:
                continue  # not ours to judge; the labels table sink dead-letters bad records
            if self.learner.learn(label.trace_id, label.passed):
                self.metrics.labels.inc()
        s = self.learner.stats()
        self.metrics.kappa.labels("all").set(s["kappa"])
        self.metrics.kappa.labels("rolling").set(s["rolling_kappa"])
        return []


def install(app: "faust.App", handler: Any, settings: "Settings", registry: CollectorRegistry,
            cfg: JudgesConfig) -> EscalationHook | None:
    """Register the hook, a drain timer and the label follower (None when escalation is disabled)."""
    from streams.drift.labels import follow_labels

    if not cfg.escalation.enabled:
        return None
    hook = EscalationHook(cfg, handler.send, settings.topic(ESCALATIONS), EscalationMetrics(registry))
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
