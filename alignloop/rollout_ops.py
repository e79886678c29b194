"""Operator actions on a rollout: start, pause, resume, promote, rollback, status (the CLI and the labeling UI).

Each action is one decision committed with its flag (``alignloop.rollout_store``), then landed in the Delta
table ``rollouts`` and appended to ``audit.log``. Synchronous; every refusal is a one-line `UserError`.

A rollout starts only from an adapter whose eval gate passed (registry status ``gate_passed``, or ``promoted``
elsewhere) and whose weights are on disk (their content hash is the candidate's ``adapter_hash``). Its baseline
is what serves the agent now: the promoted candidate after a promotion, else the flag's baseline, else the
configured default policy. A promotion keeps the previous baseline in the flag (weight 0), so ``rollback``
after a promotion is instant: one flag version, no redeploy.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignloop.errors import UserError
from alignloop.rollout_store import (FlagWriter, commit_and_follow, current_flags, land_pending,
                                     read_committed, read_decisions)
from schemas.rollout import CanaryConfig, RolloutDecisionRecord, RolloutFlag, RolloutVariant
from schemas.topics import JUDGED, LABELS

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.rollout.config import RolloutControlConfig

STARTABLE = ("gate_passed", "promoted")
ACTIVE = ("canary", "paused")
MIN_LATENCY_REFERENCE = 20


def adapter_hash(path: str | Path) -> str:
    """The adapter's content hash, as the serving runtime and vllm-sync compute it (``sha256:`` over
    adapter_config.json and the weights; the manifest, which gating rewrites, is not part of it)."""
    from trainers.serving.adapter_files import adapter_content_hash

    try:
        return adapter_content_hash(path)
    except ValueError:
        raise UserError(f"adapter weights not found at {path}; the registry row points at a missing or incomplete "
                        "adapter directory (needs adapter_config.json and the weights)") from None


def startable_adapter(settings: "Settings", adapter_id: str) -> dict[str, Any]:
    """The adapter's registry row, or a UserError saying in one line why it cannot be rolled out."""
    from trainers.registry import show_adapter

    try:
        row = show_adapter(settings, adapter_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if row["status"] not in STARTABLE:
        gate = json.loads(row["gate_json"]) if row.get("gate_json") else None
        why = "it was never gated (run `alignloop train gate`)" if gate is None else \
            f"its eval gate failed ({_gate_reason(gate)})"
        raise UserError(f"adapter {row['adapter_id']} cannot be rolled out: status {row['status']}, {why}")
    return row


def _gate_reason(gate: dict[str, Any]) -> str:
    for key in ("reason", "reasons", "failed", "failures"):
        if gate.get(key):
            v = gate[key]
            return "; ".join(map(str, v)) if isinstance(v, list) else str(v)
    return "see `alignloop models show`"


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except UserError:
        raise
    except Exception as exc:  # a broker/client failure is one line for the operator
        raise UserError(f"rollout: {exc.__class__.__name__}: {exc}") from None


async def _commit(settings: "Settings", agent_id: str, decide: Any) -> Any:
    from connectors.audit import AuditTrail

    writer, trail = FlagWriter(settings), AuditTrail(settings)
    try:
        return await commit_and_follow(settings, writer, trail, agent_id, decide)
    finally:
        await writer.close()
        await trail.close()


def record(flag: RolloutFlag, action: str, *, actor: str, reason: str, weight_before: int,
           **extra: Any) -> RolloutDecisionRecord:
    """The decision that made ``flag`` (hold: the flag in force)."""
    c = flag.candidate
    return RolloutDecisionRecord(
        decision_id=f"{flag.rollout_id}:{flag.version}:{action}", rollout_id=flag.rollout_id, agent_id=flag.agent_id,
        action=action, actor=actor, reason=reason, flag_version=flag.version, stage=flag.stage,
        weight_before=weight_before, weight_after=flag.candidate_weight, adapter_id=c.adapter_id if c else None,
        adapter_hash=c.adapter_hash if c else None, baseline_policy_id=flag.baseline.policy_id,
        candidate_policy_id=c.policy_id if c else None, decided_at=datetime.now(timezone.utc), **extra)


def next_flag(flag: RolloutFlag, **update: Any) -> RolloutFlag:
    """``flag`` changed and one version up (validated: a bad weight or stage raises here, not at the agents)."""
    data = flag.model_dump()
    data.update(update, version=flag.version + 1, updated_at=datetime.now(timezone.utc))
    return RolloutFlag.model_validate(data)


def _need(flag: RolloutFlag | None, agent_id: str, stages: tuple[str, ...], what: str) -> RolloutFlag:
    if flag is None or flag.rollout_id is None:
        raise UserError(f"agent {agent_id!r} has no rollout to {what}; start one with `alignloop rollout start`")
    if flag.stage not in stages:
        raise UserError(f"cannot {what} rollout {flag.rollout_id} of agent {agent_id!r}: it is {flag.stage} "
                        f"(only {' or '.join(stages)})")
    return flag


# --- start ---------------------------------------------------------------------------------------------------

def canary_config(cfg: "RolloutControlConfig", steps: list[int] | None, min_conversations: int | None
                  ) -> CanaryConfig:
    from pydantic import ValidationError

    update: dict[str, Any] = {}
    if steps is not None:
        update["steps"] = tuple(steps)
    if min_conversations is not None:
        update["min_conversations"] = min_conversations
    try:
        return CanaryConfig.model_validate({**cfg.canary.model_dump(), **update})
    except ValidationError as exc:
        raise UserError(f"bad rollout option: {exc.errors()[0]['msg']}") from None


def as_scrubbed(settings: "Settings", agent_id: str, policy_id: str) -> tuple[str, str]:
    """The (agent id, policy id) that traces.judged carries for them, under this deployment's scrub config and key."""
    from streams.pipeline import scrubbed_ids
    from streams.scrub import build_scrubber, load_scrub_config

    return scrubbed_ids(build_scrubber(settings, load_scrub_config(settings.scrub_config)), agent_id, policy_id)


async def latency_reference(settings: "Settings", agent_id: str, baseline: RolloutVariant, n: int
                            ) -> list[float]:
    """Latencies of the baseline's most recent judged turns of this agent (before the rollout: no rollout stamp,
    so they are matched by the agent and policy ids as raw or as scrubbed)."""
    from schemas.verdict import JudgedTrace

    agents, policies = {agent_id}, {baseline.policy_id}
    try:
        a, p = as_scrubbed(settings, agent_id, baseline.policy_id)
        agents.add(a)
        policies.add(p)
    except ValueError:  # a scrub config that does not load (ConfigError): the raw ids still match
        pass
    out: list[float] = []
    for m in await read_committed(settings, settings.topic(JUDGED), tail=n):
        try:
            t = JudgedTrace.model_validate_json(m.value).trace
        except ValueError:
            continue
        if t.agent_id in agents and t.policy_id in policies and t.adapter_hash == baseline.adapter_hash:
            out.append(t.latency_ms)
    return out[-n:]


async def _offsets(settings: "Settings", topic: str) -> dict[int, int]:
    from connectors.kafka import end_offsets

    return await end_offsets(settings, settings.topic(topic))


def start(settings: "Settings", agent_id: str, adapter_id: str, *, actor: str, steps: list[int] | None = None,
          min_conversations: int | None = None) -> RolloutFlag:
    """Put a gate-passed adapter on a canary for ``agent_id`` at the first step's weight."""
    from alignloop.configs import load_rollout_config
    from streams.rollout.attribution import p95

    cfg = load_rollout_config(settings)
    canary = canary_config(cfg, steps, min_conversations)
    row = startable_adapter(settings, adapter_id)
    candidate = RolloutVariant(policy_id=row["adapter_id"], adapter_id=row["adapter_id"],
                               adapter_hash=adapter_hash(row["path"]))

    async def go() -> Any:
        current, _ = await current_flags(settings)
        baseline = _baseline(current.get(agent_id), cfg)
        lat = [] if cfg.latency_threshold_ms else await latency_reference(
            settings, agent_id, baseline, cfg.latency_reference_traces)
        threshold = cfg.latency_threshold_ms or (p95(lat) if len(lat) >= MIN_LATENCY_REFERENCE
                                                 else cfg.latency_fallback_ms)
        offsets = {settings.topic(JUDGED): await _offsets(settings, JUDGED),
                   settings.topic(LABELS): await _offsets(settings, LABELS)}
        config = {"canary": canary.model_dump(mode="json"), "critical_tags": cfg.critical_tags,
                  "latency_threshold_ms": threshold, "latency_reference_turns": len(lat)}

        async def decide(flag: RolloutFlag | None) -> Any:
            if flag is not None and flag.stage in ACTIVE:
                raise UserError(f"agent {agent_id!r} already has rollout {flag.rollout_id} ({flag.stage}, "
                                f"candidate {flag.candidate.adapter_id}); promote or roll it back first")
            base = _baseline(flag, cfg)
            if (base.policy_id, base.adapter_hash) == (candidate.policy_id, candidate.adapter_hash):
                raise UserError(f"adapter {candidate.adapter_id} already serves agent {agent_id!r}")
            new = RolloutFlag(agent_id=agent_id, version=(flag.version + 1) if flag else 1,
                              rollout_id=f"r-{uuid.uuid4().hex[:12]}", stage="canary", baseline=base,
                              candidate=candidate, weights={"candidate": canary.steps[0],
                                                            "baseline": 100 - canary.steps[0]})
            reason = f"start at {canary.steps[0]}% (steps {list(canary.steps)}), latency threshold " \
                     f"{threshold:.0f} ms from {len(lat)} baseline turns"
            return new, record(new, "start", actor=actor, reason=reason, weight_before=0, offsets=offsets,
                               start_offsets=offsets, config=config)

        return await _commit(settings, agent_id, decide)

    return _run(go()).flag


def _baseline(flag: RolloutFlag | None, cfg: "RolloutControlConfig") -> RolloutVariant:
    if flag is None:
        return RolloutVariant(policy_id=cfg.default_baseline_policy)
    if flag.stage == "promoted" and flag.candidate is not None:
        return flag.candidate
    return flag.baseline


# --- pause / resume / promote / rollback -------------------------------------------------------------------------

def _change(settings: "Settings", agent_id: str, stages: tuple[str, ...], what: str, action: str, actor: str,
            reason: str, **update: Any) -> RolloutFlag:
    async def decide(flag: RolloutFlag | None) -> Any:
        flag = _need(flag, agent_id, stages, what)
        new = next_flag(flag, **update)
        return new, record(new, action, actor=actor, reason=reason, weight_before=flag.candidate_weight)

    done = _run(_commit(settings, agent_id, decide))
    if action == "promote":
        promote_in_registry(settings, done.decision)
    return done.flag


def pause(settings: "Settings", agent_id: str, *, actor: str) -> RolloutFlag:
    """Freeze the weights: agents keep serving them, the controller takes no step until ``resume``."""
    return _change(settings, agent_id, ("canary",), "pause", "pause", actor, "paused by an operator",
                   stage="paused")


def resume(settings: "Settings", agent_id: str, *, actor: str) -> RolloutFlag:
    return _change(settings, agent_id, ("paused",), "resume", "resume", actor, "resumed by an operator",
                   stage="canary")


def promote(settings: "Settings", agent_id: str, *, actor: str) -> RolloutFlag:
    """Serve the candidate to every conversation now (the previous baseline stays in the flag at weight 0)."""
    return _change(settings, agent_id, ACTIVE, "promote", "promote", actor, "promoted by an operator",
                   stage="promoted", weights={"candidate": 100, "baseline": 0})


def rollback(settings: "Settings", agent_id: str, *, actor: str, reason: str) -> RolloutFlag:
    """Serve the baseline to every conversation now; also undoes a promotion."""
    if not reason or not reason.strip():
        raise UserError("a rollback needs a reason (--reason)")
    return _change(settings, agent_id, (*ACTIVE, "promoted"), "roll back", "rollback", actor, reason.strip(),
                   stage="rolled_back", weights={"candidate": 0, "baseline": 100})


def promote_in_registry(settings: "Settings", decision: RolloutDecisionRecord) -> None:
    """Mark the adapter promoted in the registry (a new ``adapters`` row and ``models.registry`` event)."""
    from trainers.registry import mark_promoted

    if decision.adapter_id is None:
        return
    try:
        mark_promoted(settings, decision.adapter_id, agent_id=decision.agent_id, rollout_id=decision.rollout_id,
                      previous_policy_id=decision.baseline_policy_id)
    except ValueError as exc:  # the flag is promoted; say the registry lags, do not undo the promotion
        raise UserError(f"rollout {decision.rollout_id} promoted, but the registry was not updated: {exc}") from None


# --- status --------------------------------------------------------------------------------------------------

def status(settings: "Settings", agent_id: str) -> dict[str, Any]:
    """The agent's flag, its rollout's decisions (newest last) and the latest analysis the controller recorded."""
    async def go() -> tuple[dict[str, RolloutFlag], list[RolloutDecisionRecord]]:
        flags, _ = await current_flags(settings)
        flag = flags.get(agent_id)
        decisions = [d for d, _ in await read_decisions(settings, flag.rollout_id)] if flag and flag.rollout_id \
            else []
        return flags, decisions

    flags, decisions = _run(go())
    flag = flags.get(agent_id)
    if flag is None:
        raise UserError(f"no flag for agent {agent_id!r} (known: {', '.join(sorted(flags)) or 'none'})")
    try:
        land_pending(settings)
    except Exception:  # status reads the topic; the table catching up is a courtesy
        pass
    analysed = [d for d in decisions if d.metrics]
    last = analysed[-1] if analysed else None
    return {
        "agent_id": agent_id, "rollout_id": flag.rollout_id, "stage": flag.stage, "version": flag.version,
        "weights": dict(flag.weights), "baseline": flag.baseline.model_dump(),
        "candidate": flag.candidate.model_dump() if flag.candidate else None,
        "decisions": [{"action": d.action, "actor": d.actor, "flag_version": d.flag_version,
                       "weight": [d.weight_before, d.weight_after], "reason": d.reason,
                       "decided_at": d.decided_at.isoformat()} for d in decisions],
        "counts": {k: v.model_dump() for k, v in last.counts.items()} if last else {},
        "metrics": [m.model_dump() for m in last.metrics] if last else [],
        "flag": flag.model_dump(mode="json"),
    }
