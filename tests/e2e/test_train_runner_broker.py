"""Retraining triggered through Kafka: a request on train.requests -> trainer runner -> DPO adapter -> registry
event on models.registry + a row in Delta `adapters`, against the real broker."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from trainers.synthetic import corpus, preference_rows, write_rows

pytest.importorskip("torch", reason="needs the train extra")
pytestmark = [pytest.mark.integration, pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


def test_request_runs_training_and_publishes_registry_event(kafka_settings, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    from connectors.kafka import producer, read_topic
    from schemas.topics import REGISTRY, TRAIN_REQUESTS
    from trainers.registry import list_adapters
    from tests.helpers import settings_env
    from trainers.runner import serve
    from trainers.tiny import build_tiny_model

    s = kafka_settings
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    write_rows(s.table_uri("preferences"), "preferences", preference_rows(60, seed=3, separable=True))
    base = build_tiny_model(tmp_path / "base", corpus(), hidden=32, layers=2)
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(f"kind: dpo\nbase_model: {base}\nadapter_name: runner-dpo\noutput_root: {tmp_path / 'ad'}\n"
                      "lora: {r: 4, alpha: 8, dropout: 0.0}\ngradient_checkpointing: false\nlearning_rate: 0.01\n"
                      "epochs: 1\nbatch_size: 8\nmax_length: 64\npublish: false\n")

    async def send() -> None:
        async with producer(s) as prod:
            for payload in (b"not json", json.dumps({"kind": "dpo", "config": str(recipe), "reason": "drift:test",
                                                     "overrides": {"version": "0.2.0"}}).encode()):
                await prod.send_and_wait(s.topic(TRAIN_REQUESTS), payload)

    asyncio.run(send())
    results = asyncio.run(serve(s, settings_env(s), max_jobs=1, idle_timeout_s=60, publish=True,
                                log_dir=tmp_path / "logs"))
    assert len(results) == 1, "the malformed request is skipped, the good one runs"
    res = results[0]
    assert res.ok, Path(res.log_path).read_text()[-2000:]

    events = [json.loads(m.value) for m in asyncio.run(read_topic(s, s.topic(REGISTRY)))]
    assert [(e["adapter_id"], e["status"]) for e in events] == [("runner-dpo@0.2.0", "trained")]
    assert events[0]["manifest"]["dataset"]["table"] == "preferences"
    assert events[0]["manifest"]["metrics"]["max_param_change"] > 0
    rows = list_adapters(s)
    assert [(r["adapter_id"], r["dataset_version"]) for r in rows] == [("runner-dpo@0.2.0", 0)]
