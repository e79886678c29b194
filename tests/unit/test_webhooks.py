"""Webhook events, ids and the retry schedule; signed delivery against a receiver that verifies and fails."""
from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from alignloop.webhooks import load_webhooks, secrets
from connectors.webhooks import deliver
from schemas.settings import ConfigError
from streams.webhooks import backoff, event_of, payload, webhook_id
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_events_from_each_source_topic():
    assert event_of("drift.events", b'{"signal": "tool_error", "created_at": "t"}').type == "drift.detected"
    gated = event_of("models.registry", json.dumps({"event": "gated", "status": "gate_failed",
                                                   "manifest": {"big": 1}}).encode())
    assert gated.type == "gate.result" and "manifest" not in gated.data
    assert event_of("models.registry", b'{"event": "trained"}').type == "training.completed"
    assert event_of("audit.log", b'{"action": "rollout.rollback"}').type == "rollout.decision"
    assert event_of("audit.log", b'{"action": "erase"}').type == "erasure.completed"
    assert event_of("audit.log", b'{"action": "config.change"}').type == "audit.entry"
    assert event_of("audit.log", b"not json") is None and event_of("agent.traces", b"{}") is None


def test_ids_are_stable_per_target_and_record_and_backoff_doubles_to_its_cap():
    assert webhook_id("a", "t", 0, 5) == webhook_id("a", "t", 0, 5) != webhook_id("b", "t", 0, 5)
    assert webhook_id("a", "t", 0, 5) != webhook_id("a", "t", 0, 6)
    assert [backoff(a, 1.0, 5.0) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.fixture
def receiver():
    r = WebhookReceiver(SECRET, hang_s=5)
    yield r
    r.close()


def _send(url, **kw):
    async def go():
        async with httpx.AsyncClient() as client:
            return await deliver(client, url, SECRET, "msg_1", payload(event_of("audit.log", b'{"action": "erase"}')),
                                 delay=lambda a: 0.01, **kw)
    return asyncio.run(go())


def test_signed_delivery_verifies_and_retries_through_failures(receiver):
    receiver.script(["500", "429", "ok"])
    res = _send(receiver.url, timeout_s=2, max_attempts=5)
    assert res.ok and res.attempts == 3
    assert [r["verified"] for r in receiver.requests] == [True, True, True]
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {"msg_1"}
    assert receiver.requests[-1]["data"]["type"] == "erasure.completed"


def test_a_refusal_is_final_and_a_hang_times_out(receiver):
    receiver.script(["400"])
    res = _send(receiver.url, timeout_s=2, max_attempts=5)
    assert not res.ok and res.attempts == 1 and res.status == 400
    receiver.default = "hang"
    res = _send(receiver.url, timeout_s=0.3, max_attempts=2)
    assert not res.ok and res.attempts == 2 and res.status is None and "Timeout" in res.error


def test_wrong_secret_is_refused_by_the_receiver(receiver):
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-xx").decode()

    async def go():
        async with httpx.AsyncClient() as client:
            return await deliver(client, receiver.url, other, "m", {"a": 1}, timeout_s=2, max_attempts=1,
                                 delay=lambda a: 0)
    assert asyncio.run(go()).status == 401 and receiver.requests[-1]["verified"] is False


def test_config_and_secret_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_webhooks(tmp_path / "none.yaml")
    bad = tmp_path / "w.yaml"
    bad.write_text("webhooks:\n  - name: x\n    url: not-a-url\n    events: [drift.detected]\n")
    with pytest.raises(ConfigError, match="url"):
        load_webhooks(bad)
    bad.write_text("webhooks:\n  - name: x\n    url: http://h/\n    events: [nonsense]\n")
    with pytest.raises(ConfigError, match="events"):
        load_webhooks(bad)
    bad.write_text("webhooks:\n  - name: x\n    url: http://h/\n    events: [drift.detected]\n    secret_env: HOOK_S\n")
    cfg = load_webhooks(bad)
    with pytest.raises(ConfigError, match="set HOOK_S"):
        secrets(cfg, {})
    with pytest.raises(ConfigError, match="not a whsec_"):
        secrets(cfg, {"HOOK_S": "whsec_!!!"})
    assert secrets(cfg, {"HOOK_S": SECRET}) == {"x": SECRET}
