"""Test helpers for the rollout controller: registry adapters, judged traffic per arm, a rollout config."""
from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from connectors.kafka import producer
from schemas.registry import AdapterManifest
from schemas.rollout import RolloutFlag
from schemas.settings import Settings
from schemas.topics import JUDGED
from schemas.trace import Trace
from schemas.verdict import JudgedTrace, SourceRef, Verdict
from streams.rollout.bucketing import assign


def make_adapter(settings: Settings, root: Path, name: str, *, passed: bool | None = True) -> str:
    """A registry row for an adapter with weights on disk; passed=None: trained, never gated."""
    from trainers.registry import register

    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_model.safetensors").write_bytes(name.encode() * 64)
    (path / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    gate = None if passed is None else {"passed": passed, **({} if passed else {"reason": "win rate 0.41 < 0.5"})}
    m = AdapterManifest(adapter_id=f"{name}@1", name=name, version="1", kind="sft", base_model="tiny",
                        path=str(path), lora={}, qlora=False, seed=0, dataset={"table": "sft_examples"}, config={},
                        metrics={}, gate=gate)
    register(settings, m, "trained" if gate is None else "gated", publish=False)
    return m.adapter_id


def write_config(path: Path, **over: Any) -> Path:
    """A small canary config: two metrics with wide margins, so a test rollout decides in a few hundred turns."""
    canary = {"metrics": [{"name": "judge_score", "direction": "higher_is_better", "margin": 0.1},
                          {"name": "violation", "direction": "lower_is_better", "margin": 0.1}],
              "steps": [5, 25, 50, 100], "min_conversations": 20, "min_conversations_per_step": 15, "burn_in": 10,
              "critical_baseline_min": 10}  # a clean baseline after 10 conversations: the first breach trips
    canary.update(over.pop("canary", {}))
    path.write_text(yaml.safe_dump({"canary": canary, "look_every_s": 0.3, "latency_threshold_ms": 500.0,
                                    **over}))
    return path


def judged(agent: str, conv: str, variant, *, score: float = 0.8, tags: list[str] | None = None,
           latency_ms: float = 100.0) -> JudgedTrace:
    t = Trace(trace_id=uuid.uuid4().hex, conversation_id=conv, agent_id=agent, policy_id=variant.policy_id,
              adapter_hash=variant.adapter_hash, user_message="hi", final_response="hello", latency_ms=latency_ms)
    v = Verdict(judge="quality", scores={"task_success": score, "helpfulness": score}, tags=tags or [])
    return JudgedTrace(trace=t, verdicts=[v], source=SourceRef(topic="agent.traces", partition=0, offset=0),
                       processed_at=datetime.now(timezone.utc))


def traffic(flag: RolloutFlag, n: int, rng: random.Random, *, candidate_tags: list[str] | None = None,
            candidate_score: float = 0.8) -> list[JudgedTrace]:
    """``n`` one-turn conversations of ``flag``'s agent, each served by the variant the flag assigns."""
    out = []
    for _ in range(n):
        conv = uuid.uuid4().hex
        arm = assign(flag, conv)
        variant = flag.candidate if arm == "candidate" else flag.baseline
        base = candidate_score if arm == "candidate" else 0.8
        out.append(judged(flag.agent_id, conv, variant, score=min(1.0, max(0.0, rng.gauss(base, 0.05))),
                          tags=candidate_tags if arm == "candidate" else None))
    return out


async def publish_judged(settings: Settings, records: list[Any]) -> None:
    async with producer(settings) as prod:
        for r in records:
            value = r if isinstance(r, bytes) else r.model_dump_json().encode()
            await prod.send(settings.topic(JUDGED), value=value)


def send(settings: Settings, records: list[Any]) -> None:
    asyncio.run(publish_judged(settings, records))
