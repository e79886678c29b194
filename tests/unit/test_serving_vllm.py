"""The vLLM runtime-LoRA client and the sync logic against a local server speaking vLLM's endpoints.

The fake answers as vLLM's ``OpenAIServingModels`` does (already loaded: 400, unknown on unload: 404, a bad
path: 404/400, routes missing without VLLM_ALLOW_RUNTIME_LORA_UPDATING) and fails on demand (500, slow).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from connectors.vllm import VllmClient, VllmError
from schemas.rollout import RolloutFlag
from tests.fakes.vllm_server import FakeVllmServer

H1, H2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _dir(tmp: Path, name: str) -> str:
    d = tmp / name
    d.mkdir()
    (d / "adapter_config.json").write_text("{}")
    return str(d)


def test_client_load_unload_and_their_idempotent_errors(tmp_path: Path):
    path = _dir(tmp_path, "a")
    with FakeVllmServer() as fake, VllmClient(fake.url, backoff_s=0.01) as client:
        first = client.load_lora(H1, path)
        assert not first.already and client.loaded_loras() == {H1: path}
        assert client.load_lora(H1, path).already  # vLLM's 400 "has already been loaded"
        assert not client.unload_lora(H1).already and client.loaded_loras() == {}
        assert client.unload_lora(H1).already  # vLLM's 404 "cannot be found"
        with pytest.raises(VllmError, match="No adapter found") as missing:
            client.load_lora(H2, str(tmp_path / "nope"))
        assert missing.value.status == 404
        (tmp_path / "empty").mkdir()
        with pytest.raises(VllmError, match="no adapter_config.json") as bad:
            client.load_lora(H2, str(tmp_path / "empty"))
        assert bad.value.status == 400 and not bad.value.retryable


def test_client_retries_500s_and_slow_answers_then_gives_up(tmp_path: Path):
    path = _dir(tmp_path, "a")
    with FakeVllmServer(slow_s=0.6) as fake, VllmClient(fake.url, timeout_s=0.3, retries=2, backoff_s=0.01) as c:
        fake.script(["500", "slow"])
        assert not c.load_lora(H1, path).already  # a 500, a timeout, then success
        assert fake.calls[0][2] == 500 and H1 in fake.loras and len(fake.calls) >= 2
        fake.script(["500", "500", "500"])
        with pytest.raises(VllmError, match="500") as err:
            c.unload_lora(H1)
        assert err.value.retryable


def test_client_names_the_fix_when_runtime_updates_are_off(tmp_path: Path):
    with FakeVllmServer(runtime_updates=False) as fake, VllmClient(fake.url) as client:
        with pytest.raises(VllmError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
            client.load_lora(H1, _dir(tmp_path, "a"))


def _flag(version: int, stage: str, weights: dict, candidate: bool = True) -> RolloutFlag:
    return RolloutFlag(agent_id="bot", version=version, rollout_id="r1" if candidate else None, stage=stage,
                       baseline={"policy_id": "p1", "adapter_id": "a@1", "adapter_hash": H1},
                       candidate={"policy_id": "p2", "adapter_id": "b@1", "adapter_hash": H2} if candidate else None,
                       weights=weights)


def test_sync_loads_before_traffic_and_unloads_after_the_grace(tmp_path: Path):
    from alignloop.serve.vllm_sync import VllmSync

    paths = {"a@1": _dir(tmp_path, "a"), "b@1": _dir(tmp_path, "b")}
    with FakeVllmServer() as fake, VllmClient(fake.url, backoff_s=0.01) as client:
        client.load_lora("operator-own", paths["a@1"])  # not ours: never unloaded
        sync = VllmSync(client, lambda v: paths[v.adapter_id], grace_s=30, log=lambda m: None)
        # the candidate appears at weight 0: loaded before any conversation goes there
        assert sorted(sync.tick({"bot": _flag(1, "canary", {"baseline": 100, "candidate": 0})}, now=0)) == \
            [("load", H1), ("load", H2)]
        assert set(fake.loras) == {"operator-own", H1, H2}
        assert sync.tick({"bot": _flag(2, "canary", {"baseline": 95, "candidate": 5})}, now=1) == []
        rolled_back = {"bot": _flag(3, "rolled_back", {"baseline": 100, "candidate": 0})}
        assert sync.tick(rolled_back, now=2) == []  # nothing routes to H2 now; in-flight turns get the grace
        assert H2 in fake.loras
        assert sync.tick(rolled_back, now=40) == [("unload", H2)]
        assert set(fake.loras) == {"operator-own", H1}


def test_sync_retries_a_failed_load_on_the_next_tick(tmp_path: Path):
    from alignloop.serve.vllm_sync import VllmSync

    paths = {"a@1": _dir(tmp_path, "a")}
    with FakeVllmServer() as fake, VllmClient(fake.url, retries=0) as client:
        sync = VllmSync(client, lambda v: paths[v.adapter_id], grace_s=0, log=lambda m: None)
        flags = {"bot": _flag(1, "stable", {"baseline": 100}, candidate=False)}
        fake.script(["500"])
        assert sync.tick(flags, now=0) == [("error", H1)] and H1 not in fake.loras
        assert sync.tick(flags, now=1) == [("load", H1)] and H1 in fake.loras


def test_wanted_adapters_follow_weights_and_stage():
    from alignloop.serve.vllm_sync import wanted

    assert set(wanted({"bot": _flag(1, "canary", {"baseline": 100, "candidate": 0})})) == {H1, H2}
    assert set(wanted({"bot": _flag(2, "promoted", {"baseline": 0, "candidate": 100})})) == {H2}
    assert set(wanted({"bot": _flag(3, "rolled_back", {"baseline": 100, "candidate": 0})})) == {H1}
