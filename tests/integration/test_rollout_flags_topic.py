"""`alignloop rollout assign/export` without --flags read the compacted `rollout.flags` topic on a real broker."""
from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from alignloop.cli import app
from connectors.kafka import producer
from schemas.rollout import RolloutFlag
from schemas.topics import ROLLOUT
from streams.rollout.bucketing import assign

pytestmark = pytest.mark.integration


def _rec(agent: str, version: int, weight: int) -> dict:
    return {"agent_id": agent, "rollout_id": "r1", "version": version, "stage": "canary",
            "baseline": {"policy_id": "base"},
            "candidate": {"policy_id": "p1", "adapter_id": "a1", "adapter_hash": "sha256:1"},
            "weights": {"candidate": weight, "baseline": 100 - weight}, "updated_at": "2026-12-01T00:00:00Z"}


async def _publish(settings, values: list[tuple[str, bytes]]) -> None:
    async with producer(settings) as prod:
        for key, value in values:
            await prod.send_and_wait(settings.topic(ROLLOUT), key=key.encode(), value=value)


def test_cli_reads_the_current_flags_from_the_topic(kafka_settings, monkeypatch, tmp_path) -> None:
    s = kafka_settings
    asyncio.run(_publish(s, [
        ("support-bot", json.dumps(_rec("support-bot", 1, 5)).encode()),
        ("support-bot", json.dumps(_rec("support-bot", 2, 50)).encode()),
        ("support-bot", b"{broken"),                                            # skipped, with a reason
        ("support-bot", json.dumps(_rec("support-bot", 1, 99)).encode()),      # backwards: skipped
        ("billing-bot", json.dumps(_rec("billing-bot", 7, 25)).encode()),
    ]))
    monkeypatch.setenv("ALIGNLOOP_KAFKA_BOOTSTRAP", s.kafka_bootstrap)
    monkeypatch.setenv("ALIGNLOOP_TOPIC_PREFIX", s.topic_prefix)
    keys = tmp_path / "keys.txt"
    ids = [f"c{i}" for i in range(300)]
    keys.write_text("\n".join(ids) + "\n")
    res = CliRunner().invoke(app, ["rollout", "assign", "--agent", "support-bot", "--keys", str(keys)])
    assert res.exit_code == 0, res.output
    latest = RolloutFlag.model_validate(_rec("support-bot", 2, 50))
    assert [line.split("\t") for line in res.stdout.splitlines()] == [[c, assign(latest, c)] for c in ids]
    assert res.stderr.count("skipped") == 2 and "older than 2" in res.stderr
    res = CliRunner().invoke(app, ["rollout", "export", "--format", "flagd"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(doc["flags"]) == ["billing-bot", "support-bot"]
    assert doc["flags"]["billing-bot"]["metadata"]["version"] == 7
