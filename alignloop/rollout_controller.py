"""The rollout controller: follows every active rollout's judged traffic and steps, promotes, rolls back or
holds it (``alignloop rollout controller``).

Stateless restart. The flag on ``rollout.flags`` says where a rollout is (stage, weight, version); its start
decision on ``rollout.decisions`` says where its traffic begins (the ``traces.judged`` and ``feedback.labels``
offsets when it started) and which canary config it runs under; the last step's decision says where the
current weight began. A (re)started controller reads those, re-reads the traffic from the start offsets into
the analysis, and goes on. Each decision is committed with its flag in one transaction, only if the flag is
still the one the analysis looked at, so a decision is never lost, never taken twice, and versions only rise.
Then it is landed in Delta ``rollouts`` and appended to ``audit.log``; on start-up the controller catches both
up with every decision on the topic (a crash between the commit and either of them loses nothing).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from alignloop.rollout_metrics import RolloutMetrics
from alignloop.rollout_ops import ACTIVE, next_flag, promote_in_registry, record
from aiokafka.errors import KafkaError

from alignloop.rollout_store import (ACTOR, FlagWriter, RolloutConflict, audit_decision, audited_decision_ids, commit_and_follow,
                                     consumer, current_flags, land_pending, partitions, read_decisions)
from schemas.preference import Label
from schemas.rollout import CanaryConfig, Decision, RolloutDecisionRecord, RolloutFlag
from schemas.topics import JUDGED, LABELS
from schemas.verdict import JudgedTrace
from streams.rollout.analysis import CanaryAnalyzer
from streams.rollout.attribution import RolloutTraffic

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.rollout.config import RolloutControlConfig

log = logging.getLogger(__name__)
DRAIN_MAX = 50_000  # records per look and topic, so one busy rollout never starves the others' looks


@dataclass
class RolloutRun:
    """One active rollout: its flag, its traffic so far, and its own consumers positioned in the topics."""

    flag: RolloutFlag
    start: RolloutDecisionRecord
    analyzer: CanaryAnalyzer
    traffic: RolloutTraffic
    since: dict[int, int]                       # judged partition -> offset where the current weight began
    held: set[int] = field(default_factory=set)  # flag versions whose hold is recorded
    hold_since: float | None = None
    consumers: dict[str, Any] = field(default_factory=dict)
    last: Decision | None = None

    @property
    def rollout_id(self) -> str:
        return self.flag.rollout_id or ""


class Controller:
    def __init__(self, settings: "Settings", cfg: "RolloutControlConfig", metrics: RolloutMetrics | None = None,
                 actor: str = ACTOR) -> None:
        self.settings, self.cfg, self.actor = settings, cfg, actor
        self.metrics = metrics or RolloutMetrics()
        self.runs: dict[str, RolloutRun] = {}
        self.writer = FlagWriter(settings)
        self.trail: Any = None
        self.decisions: list[RolloutDecisionRecord] = []  # committed by this process, for callers and tests
        self._warned: set[str] = set()
        self.judged_topic, self.labels_topic = settings.topic(JUDGED), settings.topic(LABELS)

    # --- life cycle ---------------------------------------------------------------------------------------------

    async def open(self) -> None:
        from connectors.audit import AuditTrail

        self.trail = AuditTrail(self.settings)
        await self.catch_up()

    async def close(self) -> None:
        for run in self.runs.values():
            await self._close_run(run)
        self.runs.clear()
        await self.writer.close()
        if self.trail is not None:
            await self.trail.close()

    async def catch_up(self) -> int:
        """Land every decision the table lacks and audit every one the trail lacks (after a crash)."""
        await asyncio.to_thread(land_pending, self.settings)
        audited = await audited_decision_ids(self.settings)
        missing = [d for d, _ in await read_decisions(self.settings) if d.decision_id not in audited]
        for d in missing:
            await audit_decision(self.trail, d)
        if missing:
            log.warning("audited %d decision(s) a previous run committed but did not audit", len(missing))
        return len(missing)

    async def run(self, stop: asyncio.Event | None = None, until: Any = None) -> None:
        """Look at every active rollout every ``look_every_s`` until ``stop`` is set or ``until()`` is true."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except (KafkaError, OSError, asyncio.TimeoutError, RolloutConflict) as exc:  # a broker blip: look again
                log.warning("rollout look failed (%s: %s); retrying in %.1f s", exc.__class__.__name__, exc,
                            self.cfg.look_every_s)
            if until is not None and until(self):
                return
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, self.cfg.look_every_s - (time.monotonic() - started)))
            except asyncio.TimeoutError:
                pass

    # --- one look ------------------------------------------------------------------------------------------------

    async def tick(self) -> list[RolloutDecisionRecord]:
        flags, skipped = await current_flags(self.settings)
        for reason in skipped:
            self._skip(self.settings.topic("rollout.flags"), "bad_flag", reason)
        made: list[RolloutDecisionRecord] = []
        for agent_id, flag in flags.items():
            self.metrics.flag(flag)
            run = self.runs.get(agent_id)
            if flag.stage not in ACTIVE or flag.rollout_id is None:
                if run is not None:
                    await self._close_run(self.runs.pop(agent_id))
                continue
            if run is None or run.rollout_id != flag.rollout_id:
                if run is not None:
                    await self._close_run(self.runs.pop(agent_id))
                run = await self._open_run(flag)
                if run is None:
                    continue
            if flag.version < run.flag.version:  # a read from just before our own commit showed up: keep ours
                continue
            run.flag = run.traffic.flag = flag
            await self._drain(run)
            made.extend(await self._look(run))
        return made

    async def _look(self, run: RolloutRun) -> list[RolloutDecisionRecord]:
        flag, now = run.flag, datetime.now(timezone.utc)
        window, at_weight = run.traffic.window(run.analyzer, run.since)
        d = run.analyzer.decide(window, flag.candidate_weight, at_weight, now, flag)
        run.last = d
        holding = flag.stage == "canary" and d.action == "hold"
        run.hold_since = (run.hold_since or time.time()) if holding else None
        self.metrics.analysis(flag, d, time.time() - run.hold_since if run.hold_since else 0.0, time.time(),
                              dict(run.traffic.skipped))
        if flag.stage != "canary" or d.action == "continue" or (holding and flag.version in run.held):
            return []
        done = await self._commit(run, d)
        return [done] if done else []

    async def _commit(self, run: RolloutRun, d: Decision) -> RolloutDecisionRecord | None:
        seen, positions = run.flag, await self._positions(run)
        stats = dict(counts=d.counts, metrics=d.metrics, steps=d.steps, method=d.method, offsets=positions)

        async def decide(current: RolloutFlag | None) -> Any:
            if current != seen:  # changed since the analysis (an operator, another controller): look again
                return None
            w = seen.candidate_weight
            if d.action == "hold":
                return None, record(seen, "hold", actor=self.actor, reason=d.reason, weight_before=w, **stats)
            update: dict[str, Any] = {"step": dict(weights={"candidate": d.next_weight,
                                                           "baseline": 100 - d.next_weight}),
                                      "promote": dict(stage="promoted", weights={"candidate": 100, "baseline": 0}),
                                      "rollback": dict(stage="rolled_back", weights={"candidate": 0,
                                                                                     "baseline": 100})}[d.action]
            new = next_flag(seen, **update)
            return new, record(new, d.action, actor=self.actor, reason=d.reason, weight_before=w, **stats)

        done = await commit_and_follow(self.settings, self.writer, self.trail, seen.agent_id, decide)
        if done is None:
            return None
        rec = done.decision
        self.decisions.append(rec)
        self.metrics.decisions.labels(rec.agent_id, rec.action).inc()
        log.warning("rollout %s (%s): %s at version %d: %s", rec.rollout_id, rec.agent_id, rec.action,
                    rec.flag_version, rec.reason)
        if rec.action == "hold":
            run.held.add(rec.flag_version)
        else:
            run.flag = run.traffic.flag = done.flag
            run.since = dict(positions.get(self.judged_topic, {}))
            self.metrics.flag(done.flag)
        if rec.action == "promote":
            await asyncio.to_thread(promote_in_registry, self.settings, rec)
        return rec

    # --- a rollout's traffic -----------------------------------------------------------------------------------

    async def _open_run(self, flag: RolloutFlag) -> RolloutRun | None:
        decisions = [d for d, _ in await read_decisions(self.settings, flag.rollout_id)]
        start = next((d for d in decisions if d.action == "start"), None)
        if start is None or not start.config:
            self._skip(self.settings.topic("rollout.flags"), "no_start_decision",
                       f"rollout {flag.rollout_id} of agent {flag.agent_id}: no start decision on "
                       f"rollout.decisions; not analysed (start rollouts with `alignloop rollout start`)")
            return None
        cfg = start.config
        analyzer = CanaryAnalyzer(CanaryConfig.model_validate(cfg["canary"]))
        traffic = RolloutTraffic(flag, tuple(cfg.get("critical_tags", ())), cfg.get("latency_threshold_ms"),
                                 self.cfg.max_tracked_traces)
        last_move = next((d for d in reversed(decisions) if d.action in ("start", "step")), start)
        holds = [d for d in decisions if d.action == "hold"]
        run = RolloutRun(flag, start, analyzer, traffic, since=dict(last_move.offsets.get(self.judged_topic, {})),
                         held={d.flag_version for d in holds})
        if holds and holds[-1].flag_version == flag.version:
            run.hold_since = holds[-1].decided_at.timestamp()
        for topic in (self.judged_topic, self.labels_topic):
            run.consumers[topic] = await self._consumer(topic, start.start_offsets.get(topic, {}))
        self.runs[flag.agent_id] = run
        log.info("following rollout %s of %s from %s", flag.rollout_id, flag.agent_id, start.start_offsets)
        return run

    async def _consumer(self, topic: str, start: dict[Any, int]) -> Any:
        from aiokafka import TopicPartition

        c = consumer(self.settings)
        await c.start()
        tps = [TopicPartition(topic, p) for p in await partitions(c, topic)]
        c.assign(tps)
        starts = {int(p): o for p, o in start.items()}
        for tp in tps:
            c.seek(tp, starts.get(tp.partition, 0))
        return c

    async def _drain(self, run: RolloutRun) -> None:
        for topic, c in run.consumers.items():
            got = 0
            while got < DRAIN_MAX:
                batch = await c.getmany(timeout_ms=50, max_records=5000)
                if not batch:
                    break
                for tp, msgs in batch.items():
                    got += len(msgs)
                    for m in msgs:
                        self._fold(run, topic, m)

    def _fold(self, run: RolloutRun, topic: str, m: Any) -> None:
        try:
            if topic == self.judged_topic:
                run.traffic.judged(JudgedTrace.model_validate_json(m.value), m.partition, m.offset)
            else:
                run.traffic.label(Label.model_validate_json(m.value))
        except (ValueError, TypeError) as exc:  # bad input is counted and named, never fatal
            self._skip(topic, "invalid", f"{topic}[{m.partition}]@{m.offset}: {str(exc).splitlines()[0][:160]}")

    async def _positions(self, run: RolloutRun) -> dict[str, dict[int, int]]:
        """Next offset per partition the analysis has read, per topic (known after a drain: no fetch)."""
        return {topic: {tp.partition: await c.position(tp) for tp in c.assignment()}
                for topic, c in run.consumers.items()}

    async def _close_run(self, run: RolloutRun) -> None:
        for c in run.consumers.values():
            await c.stop()
        run.consumers.clear()

    def _skip(self, topic: str, reason: str, detail: str) -> None:
        """Count and name a skipped record once (the flags topic is re-read every look: same record, same
        detail); the set is bounded, so a flood of bad records is counted approximately, never fatal."""
        if detail in self._warned:
            return
        if len(self._warned) > 100_000:
            self._warned.clear()
        self._warned.add(detail)
        self.metrics.skipped.labels(topic, reason).inc()
        log.warning("skipped %s: %s", topic, detail)

    def status(self) -> dict[str, Any]:
        return {agent: {"rollout_id": r.rollout_id, "stage": r.flag.stage, "weight": r.flag.candidate_weight,
                        "version": r.flag.version, "last": r.last.action if r.last else None,
                        "skipped": dict(r.traffic.skipped)} for agent, r in self.runs.items()}


async def run_controller(settings: "Settings", cfg: "RolloutControlConfig", *, metrics: RolloutMetrics | None = None,
                         stop: asyncio.Event | None = None, until: Any = None) -> Controller:
    ctl = Controller(settings, cfg, metrics)
    await ctl.open()
    try:
        await ctl.run(stop, until)
    finally:
        await ctl.close()
    return ctl


def run_canary(settings: "Settings", agent_id: str, adapter_id: str, *, actor: str = "demo",
               steps: list[int] | None = None, min_conversations: int | None = None, timeout_s: float = 600.0,
               metrics: RolloutMetrics | None = None) -> dict[str, Any]:
    """Start a rollout and control it in this process until it is promoted or rolled back (or ``timeout_s``);
    the demo's entry point, while a fleet sends traffic. Returns ``rollout_ops.status`` at the end, with
    ``timed_out`` added."""
    from alignloop.configs import load_rollout_config
    from alignloop.rollout_ops import start, status

    cfg = load_rollout_config(settings)
    flag = start(settings, agent_id, adapter_id, actor=actor, steps=steps, min_conversations=min_conversations)
    deadline = time.monotonic() + timeout_s

    def finished(ctl: Controller) -> bool:
        run = ctl.runs.get(agent_id)
        ended = any(d.rollout_id == flag.rollout_id and d.action in ("promote", "rollback") for d in ctl.decisions)
        return ended or time.monotonic() > deadline or (run is not None and run.flag.stage not in ACTIVE)

    asyncio.run(run_controller(settings, cfg, metrics=metrics, until=finished))
    out = status(settings, agent_id)
    out["timed_out"] = out["rollout_id"] == flag.rollout_id and out["stage"] in ACTIVE
    return out
