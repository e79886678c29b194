"""Where a rollout's state lives, and the one way it changes: the flag and its decision in one Kafka transaction.

The compacted ``rollout.flags`` topic is the source of truth (one flag per agent, the version counting every
change); ``rollout.decisions`` holds every decision, written in the SAME transaction as the flag it made, so a
flag never exists without its decision and a decision never without its flag. Every writer (the controller and
each operator command) uses one transactional id: starting a producer fences the older ones, so a writer that
read the flags and commits without being fenced knows nobody changed them in between (the audit trail's trick,
connectors/audit.py); a fenced writer re-reads and decides again. Readers use ``read_committed``: an aborted
attempt is never seen.

The Delta table ``rollouts`` and ``audit.log`` follow from ``rollout.decisions``: rows land in offset order per
partition with the offset as the app transaction (``land_pending``, safe to call from any process), and audit
entries are appended by the process that made the decision, or caught up by a restarted controller.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from connectors.kafka import aiokafka_client_kwargs, discard_producer, start_transactional
from schemas.rollout import RolloutDecisionRecord, RolloutFlag
from schemas.tables import ROLLOUTS_TABLE
from schemas.topics import ROLLOUT, ROLLOUT_DECISIONS

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)
_MAX_ATTEMPTS = 8
ACTOR = "controller"


class RolloutConflict(RuntimeError):
    """The flag changed under a decision (another writer won); the caller re-reads and decides again."""


def consumer(settings: "Settings", **kw: Any) -> Any:
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(**aiokafka_client_kwargs(settings), enable_auto_commit=False, group_id=None,
                            isolation_level="read_committed", auto_offset_reset="earliest",
                            max_partition_fetch_bytes=16 << 20, **kw)


async def partitions(c: Any, topic: str) -> list[int]:
    parts = c.partitions_for_topic(topic) or set()
    if not parts:
        await c._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        parts = c.partitions_for_topic(topic) or set()
    return sorted(parts)


async def read_committed(settings: "Settings", topic: str, start: dict[int, int] | None = None,
                         tail: int | None = None) -> list[Any]:
    """Committed records of ``topic`` from ``start`` (partition -> offset; default the beginning, or the last
    ``tail`` per partition) up to the last stable offset, in offset order per partition."""
    from aiokafka import TopicPartition

    c = consumer(settings)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions(c, topic)]
        if not tps:
            return []
        c.assign(tps)
        ends = await c.end_offsets(tps)
        begins = await c.beginning_offsets(tps)
        out: list[Any] = []
        for tp in tps:
            first = (start or {}).get(tp.partition, 0) if tail is None else ends[tp] - tail
            first = max(first, begins[tp])
            if first >= ends[tp]:
                continue
            c.seek(tp, first)
            idle = 0
            while await c.position(tp) < ends[tp] and idle < 10:  # idle: only control markers left
                batch = await c.getmany(tp, timeout_ms=500, max_records=5000)
                msgs = [m for m in batch.get(tp, []) if m.offset < ends[tp]]
                idle = 0 if batch.get(tp) else idle + 1
                out.extend(msgs)
        return out
    finally:
        await c.stop()


async def current_flags(settings: "Settings") -> tuple[dict[str, RolloutFlag], list[str]]:
    """Agent id -> flag in force, and one reason per record skipped (bad, backwards, tombstone)."""
    from streams.rollout.flags import fold_records

    return fold_records(m.value for m in await read_committed(settings, settings.topic(ROLLOUT)))


def parse_decisions(msgs: list[Any]) -> tuple[list[tuple[RolloutDecisionRecord, Any]], list[str]]:
    good, bad = [], []
    for m in msgs:
        try:
            good.append((RolloutDecisionRecord.model_validate_json(m.value), m))
        except (ValueError, TypeError) as exc:
            bad.append(f"{m.topic}[{m.partition}]@{m.offset}: not a RolloutDecisionRecord ({str(exc)[:120]})")
    return good, bad


async def read_decisions(settings: "Settings", rollout_id: str | None = None
                         ) -> list[tuple[RolloutDecisionRecord, Any]]:
    """Every decision (of one rollout), in commit order per agent; malformed records are skipped and logged."""
    good, bad = parse_decisions(await read_committed(settings, settings.topic(ROLLOUT_DECISIONS)))
    for reason in bad:
        log.warning("skipped %s", reason)
    return [(d, m) for d, m in good if rollout_id is None or d.rollout_id == rollout_id]


Decide = Callable[[RolloutFlag | None], Awaitable["tuple[RolloutFlag | None, RolloutDecisionRecord] | None"]]


class FlagWriter:
    """Commits (flag, decision) pairs atomically, one writer at a time across processes."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.flags_topic = settings.topic(ROLLOUT)
        self.decisions_topic = settings.topic(ROLLOUT_DECISIONS)
        self._producer: Any = None
        self._committed: dict[str, int] = {}  # agent -> highest flag version this writer committed

    async def _flag_in_force(self, agent_id: str) -> RolloutFlag | None:
        """The agent's flag, never older than one this writer committed: commit markers are written just after
        a commit returns, so an immediate read may not show it yet (another writer's init waits for them)."""
        for _ in range(50):
            flag = (await current_flags(self.settings))[0].get(agent_id)
            if (flag.version if flag else -1) >= self._committed.get(agent_id, -1):
                return flag
            await asyncio.sleep(0.1)
        raise RolloutConflict(f"the flag of agent {agent_id!r} reads older than the one just committed")

    async def commit(self, agent_id: str, decide: Decide) -> tuple[RolloutFlag | None, RolloutDecisionRecord,
                                                                  Any] | None:
        """Read the agent's flag, ``decide`` on it, and commit the outcome. ``decide`` returns None to do
        nothing (or raises, e.g. a UserError); it runs again if another writer fenced this one."""
        from aiokafka.errors import KafkaError

        for attempt in range(_MAX_ATTEMPTS):
            try:
                await self._ensure_started()  # fences every other writer first, THEN read what they left
                outcome = await decide(await self._flag_in_force(agent_id))
                if outcome is None:
                    return None
                flag, decision = outcome
                async with self._producer.transaction():
                    if flag is not None:
                        await self._producer.send_and_wait(self.flags_topic, key=agent_id.encode(),
                                                           value=flag.model_dump_json().encode())
                    meta = await self._producer.send_and_wait(self.decisions_topic, key=agent_id.encode(),
                                                              value=decision.model_dump_json().encode())
                if flag is not None:
                    self._committed[agent_id] = flag.version
                return flag, decision, meta
            except KafkaError as exc:  # fenced by another writer, or an unknown outcome: start again
                log.info("rollout commit attempt %d for %s: %s; re-reading the flags", attempt + 1, agent_id, exc)
                await self._reset()
        raise RolloutConflict(f"could not commit a decision for agent {agent_id!r} after {_MAX_ATTEMPTS} attempts")

    async def _ensure_started(self) -> None:
        if self._producer is None:
            self._producer = await start_transactional(self.settings, f"alignloop-rollout:{self.flags_topic}")

    async def _reset(self) -> None:
        prod, self._producer = self._producer, None
        await discard_producer(prod)

    async def close(self) -> None:
        await self._reset()


# --- followers: the Delta table and the audit trail ------------------------------------------------------------

def decision_row(d: RolloutDecisionRecord, src: Any) -> dict[str, Any]:
    dump = d.model_dump(mode="json")
    return {
        "decision_id": d.decision_id, "rollout_id": d.rollout_id, "agent_id": d.agent_id, "action": d.action,
        "actor": d.actor, "reason": d.reason, "flag_version": d.flag_version, "stage": d.stage,
        "weight_before": d.weight_before, "weight_after": d.weight_after, "adapter_id": d.adapter_id,
        "adapter_hash": d.adapter_hash, "baseline_policy_id": d.baseline_policy_id,
        "candidate_policy_id": d.candidate_policy_id,
        "baseline_conversations": d.counts["baseline"].conversations if "baseline" in d.counts else None,
        "candidate_conversations": d.counts["candidate"].conversations if "candidate" in d.counts else None,
        "counts_json": json.dumps(dump["counts"], sort_keys=True), "metrics_json": json.dumps(dump["metrics"]),
        "steps_json": json.dumps(dump["steps"]), "record_json": d.model_dump_json(), "decided_at": d.decided_at,
        "date": d.decided_at.date().isoformat(), "src_topic": src.topic, "src_partition": src.partition,
        "src_offset": src.offset,
    }


def _land(settings: "Settings") -> int:
    from connectors.delta_sink import table_sink

    topic = settings.topic(ROLLOUT_DECISIONS)
    sink = table_sink(settings, ROLLOUTS_TABLE, "rollouts")

    async def pending() -> list[Any]:
        from aiokafka import TopicPartition

        c = consumer(settings)
        await c.start()
        try:
            parts = await partitions(c, topic)
            ends = await c.end_offsets([TopicPartition(topic, p) for p in parts]) if parts else {}
        finally:
            await c.stop()
        start = {p: sink.committed_offset(topic, p) + 1 for p in parts}
        if all(start[tp.partition] >= end for tp, end in ends.items()):
            return []
        return await read_committed(settings, topic, start)

    msgs = asyncio.run(pending())
    good, _bad = parse_decisions(msgs)
    by_offset = {(m.partition, m.offset): d for d, m in good}
    for m in msgs:  # every offset advances, a malformed record lands no row
        d = by_offset.get((m.partition, m.offset))
        sink.add(decision_row(d, m) if d is not None else None, m)
    return sink.flush()


def land_pending(settings: "Settings", attempts: int = 4) -> int:
    """Land every decision the table lacks, in offset order (any process may call it; concurrent writers
    conflict on the app transaction and the loser retries). Returns rows written. Synchronous (Delta)."""
    for attempt in range(attempts):
        try:
            return _land(settings)
        except Exception as exc:  # a concurrent lander committed first: read again
            if attempt == attempts - 1:
                raise
            log.info("landing rollout decisions, attempt %d: %s", attempt + 1, exc)
    return 0


def read_rollouts(settings: "Settings", rollout_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of the ``rollouts`` table (one per decision_id), oldest first."""
    from connectors.delta_sink import read_table

    rows = read_table(settings.table_uri(ROLLOUTS_TABLE), storage_options=settings.lake_storage_options or None
                      ).to_pylist()
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        if rollout_id is None or r["rollout_id"] == rollout_id:
            seen.setdefault(r["decision_id"], r)
    return sorted(seen.values(), key=lambda r: (r["decided_at"], r["flag_version"]))


def audit_details(d: RolloutDecisionRecord) -> dict[str, Any]:
    """What the audit trail keeps of a decision: ids, versions, weights, counts, per-metric verdicts and bounds;
    no conversation id and no text of any trace."""
    return {"decision_id": d.decision_id, "rollout_id": d.rollout_id, "agent_id": d.agent_id,
            "flag_version": d.flag_version, "stage": d.stage, "weight_before": d.weight_before,
            "weight_after": d.weight_after, "adapter_id": d.adapter_id, "adapter_hash": d.adapter_hash,
            "baseline_policy_id": d.baseline_policy_id, "reason": d.reason,
            "counts": {k: v.model_dump() for k, v in d.counts.items()},
            "metrics": {m.name: {"verdict": m.verdict, "delta": m.delta, "harm_upper": m.harm_upper,
                                 "ni_upper": m.ni_upper, "n": [m.n_baseline, m.n_candidate]} for m in d.metrics}}


async def audit_decision(trail: Any, d: RolloutDecisionRecord) -> None:
    await trail.append(actor=d.actor, action=f"rollout.{d.action}", subject=f"rollout:{d.rollout_id}",
                       details=audit_details(d))


async def audited_decision_ids(settings: "Settings") -> set[str]:
    from connectors.audit import read_entries

    return {e.details.get("decision_id") for e, _ in await read_entries(settings)
            if e.action.startswith("rollout.") and e.details.get("decision_id")}


@dataclass(frozen=True)
class Committed:
    flag: RolloutFlag | None
    decision: RolloutDecisionRecord


async def commit_and_follow(settings: "Settings", writer: FlagWriter, trail: Any, agent_id: str,
                            decide: Decide) -> Committed | None:
    """Commit one decision, then land it in Delta and append it to the audit trail."""
    done = await writer.commit(agent_id, decide)
    if done is None:
        return None
    flag, decision, _meta = done
    try:
        await asyncio.to_thread(land_pending, settings)
    except Exception as exc:  # the topic holds the decision; the next lander catches the table up
        log.warning("decision %s is committed but not yet in Delta: %s", decision.decision_id, exc)
    await audit_decision(trail, decision)
    return Committed(flag, decision)


