"""vllm-sync follows the real ``rollout.flags`` topic and the Delta registry, driving a server that speaks vLLM's
runtime-LoRA endpoints: a candidate published at weight 0 is loaded before its ramp, a rolled-back one unloaded;
a bad record is skipped; a registry path whose weights are not the flag's hash is never loaded under that name."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.kafka import producer
from connectors.vllm import VllmClient
from schemas.registry import AdapterManifest
from schemas.rollout import RolloutFlag
from schemas.topics import ROLLOUT
from tests.fakes.vllm_server import FakeVllmServer

pytestmark = pytest.mark.integration


def _adapter(settings, root: Path, name: str, payload: bytes) -> tuple[str, str]:
    """A registry row for an adapter directory (bytes stand in for weights: the hash reads bytes)."""
    from trainers.registry import registry_row, write_row
    from trainers.serving.adapter_files import adapter_content_hash

    d = root / name
    d.mkdir()
    (d / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (d / "adapter_model.safetensors").write_bytes(payload)
    m = AdapterManifest(adapter_id=f"{name}@1", name=name, version="1", kind="sft", base_model="b", path=str(d),
                        lora={}, qlora=False, seed=0, dataset={}, config={}, metrics={})
    write_row(settings, registry_row(m, "trained"))
    return f"{name}@1", adapter_content_hash(d)


def _flag(version: int, stage: str, cand_weight: int, base: tuple[str, str], cand: tuple[str, str]) -> bytes:
    return RolloutFlag(agent_id="bot", version=version, rollout_id="r1", stage=stage,
                       baseline={"policy_id": "p1", "adapter_id": base[0], "adapter_hash": base[1]},
                       candidate={"policy_id": "p2", "adapter_id": cand[0], "adapter_hash": cand[1]},
                       weights={"baseline": 100 - cand_weight, "candidate": cand_weight}).model_dump_json().encode()


async def _publish(settings, values: list[bytes]) -> None:
    async with producer(settings) as prod:
        for v in values:
            await prod.send_and_wait(settings.topic(ROLLOUT), key=b"bot", value=v)


def test_sync_follows_flags_and_registry(kafka_settings, tmp_path: Path) -> None:
    from alignloop.serve.vllm_sync import VllmSync, follow, registry_resolver

    s = kafka_settings
    base, cand = _adapter(s, tmp_path, "base", b"weights-1"), _adapter(s, tmp_path, "cand", b"weights-2")
    logs: list[str] = []
    with FakeVllmServer() as fake, VllmClient(fake.url, backoff_s=0.01) as client:
        sync = VllmSync(client, registry_resolver(s), grace_s=0, log=logs.append)
        asyncio.run(_publish(s, [b"{broken", _flag(1, "canary", 0, base, cand)]))
        asyncio.run(asyncio.wait_for(follow(s, sync, interval_s=0.3, until=lambda x: len(x.state.loaded) == 2), 60))
        assert set(fake.loras) == {base[1], cand[1]}  # loaded before any traffic goes to the candidate
        assert fake.loras[cand[1]] == str(tmp_path / "cand")

        asyncio.run(_publish(s, [_flag(2, "canary", 5, base, cand), _flag(3, "rolled_back", 0, base, cand)]))
        asyncio.run(asyncio.wait_for(follow(s, sync, interval_s=0.3, until=lambda x: cand[1] not in x.state.loaded),
                                     60))
        assert set(fake.loras) == {base[1]}
        assert any(f"unloaded {cand[1]}" in line for line in logs)

        # the registry directory now holds other weights than the flag's hash: refused, nothing loaded
        (tmp_path / "cand" / "adapter_model.safetensors").write_bytes(b"tampered")
        asyncio.run(_publish(s, [_flag(4, "canary", 0, base, cand)]))
        asyncio.run(asyncio.wait_for(follow(s, sync, interval_s=0.3, max_ticks=3), 60))
        assert set(fake.loras) == {base[1]}
        assert "not loading other weights under that name" in sync.state.errors[cand[1]]
