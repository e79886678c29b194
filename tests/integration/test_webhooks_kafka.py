"""`alignloop webhooks` against a real broker: every event type delivered signed, retried through failures, a
hanging or refusing receiver dead-lettered, offsets committed only once the record's deliveries are settled."""
from __future__ import annotations

import asyncio
import json

import pytest

from alignloop.publish import publish
from alignloop.webhooks import WebhookRunner
from connectors.kafka import read_topic
from schemas.topics import AUDIT, DRIFT, REGISTRY, WEBHOOKS_DLQ
from schemas.webhooks import WebhookDeadLetter, WebhooksConfig
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.unit.test_webhooks import SECRET

pytestmark = pytest.mark.integration


def test_events_are_delivered_retried_and_dead_lettered(kafka_settings):
    s = kafka_settings
    good, hang, refuse = (WebhookReceiver(SECRET, hang_s=5) for _ in range(3))
    try:
        good.script(["500", "500"])  # the first two attempts fail: retried, then delivered
        hang.default, refuse.default = "hang", "400"
        cfg = WebhooksConfig.model_validate({"webhooks": [
            {"name": "good", "url": good.url, "backoff_s": 0.05, "events": [
                "drift.detected", "gate.result", "training.completed", "rollout.decision", "erasure.completed"]},
            {"name": "hang", "url": hang.url, "timeout_s": 0.5, "max_attempts": 2, "backoff_s": 0.05,
             "events": ["drift.detected"]},
            {"name": "refuse", "url": refuse.url, "events": ["gate.result"]}]})
        secret_of = {t.name: SECRET for t in cfg.webhooks}
        asyncio.run(publish(s, s.topic(DRIFT), [(b"p", json.dumps({"signal": "tool_error", "z": 4.2}).encode())]))
        asyncio.run(publish(s, s.topic(REGISTRY), [
            (b"a@1", json.dumps({"adapter_id": "a@1", "event": "trained", "status": "trained"}).encode()),
            (b"a@1", json.dumps({"adapter_id": "a@1", "event": "gated", "status": "gate_failed"}).encode())]))
        asyncio.run(publish(s, s.topic(AUDIT), [
            (None, json.dumps({"seq": 0, "action": "rollout.promote", "subject": "agent-7"}).encode()),
            (None, json.dumps({"seq": 1, "action": "erase", "subject": "conversation c-9"}).encode()),
            (None, b"not json at all")]))
        runner = WebhookRunner(s, cfg, secret_of)
        asyncio.run(runner.run(stop_when_idle_s=2))

        delivered = good.verified()
        assert all(r["verified"] for r in good.requests) and len(good.requests) == 7  # 5 events + 2 retries
        ok = [r for r in delivered if r["mode"] == "ok"]
        assert sorted(r["data"]["type"] for r in ok) == ["drift.detected", "erasure.completed", "gate.result",
                                                         "rollout.decision", "training.completed"]
        assert len({r["headers"]["webhook-id"] for r in ok}) == 5
        assert len({r["headers"]["webhook-id"] for r in good.requests[:3]}) == 1  # a retry keeps its id

        letters = [WebhookDeadLetter.model_validate_json(m.value)
                   for m in asyncio.run(read_topic(s, s.topic(WEBHOOKS_DLQ)))]
        by = {d.webhook: d for d in letters}
        assert sorted(by) == ["hang", "refuse"]
        assert by["hang"].attempts == 2 and "Timeout" in by["hang"].last_error
        assert by["hang"].payload["data"]["signal"] == "tool_error" and by["hang"].src_topic == s.topic(DRIFT)
        assert by["refuse"].attempts == 1 and by["refuse"].last_status == 400
        counts = {(x.labels["webhook"], x.labels["outcome"]): x.value for m in runner.registry.collect()
                  for x in m.samples if x.name.endswith("_total")}
        assert counts[("good", "delivered")] == 5 and counts[("good", "retried")] == 2
        assert counts[("hang", "dead_lettered")] == 1 and counts[("refuse", "dead_lettered")] == 1

        # committed: a second run of the same group delivers nothing again
        before = len(good.requests)
        asyncio.run(WebhookRunner(s, cfg, secret_of).run(stop_when_idle_s=2))
        assert len(good.requests) == before
    finally:
        for r in (good, hang, refuse):
            r.close()


def test_a_runner_killed_mid_delivery_redelivers_with_the_same_id(kafka_settings, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from alignloop.runner import REPO, settings_env
    from tests.helpers import wait_for

    s = kafka_settings
    receiver = WebhookReceiver(SECRET, hang_s=60)
    receiver.script(["hang"])  # the first attempt hangs: the runner is killed while it waits
    config = tmp_path / "hooks.yaml"
    config.write_text(f"webhooks:\n  - name: ops\n    url: {receiver.url}\n    events: [erasure.completed]\n"
                      f"    secret_env: HOOK_SECRET\n    timeout_s: 30\n")
    env = {**settings_env(s), "HOOK_SECRET": SECRET}
    args = [sys.executable, "-m", "alignloop.cli", "webhooks", "run", "--config", str(config)]
    try:
        asyncio.run(publish(s, s.topic(AUDIT), [(None, json.dumps({"seq": 0, "action": "erase",
                                                                   "subject": "c-1"}).encode())]))
        first = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        wait_for(lambda: len(receiver.requests) == 1, 60, what="the first (hanging) attempt")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        once = subprocess.run(args + ["--once"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert once.returncode == 0, once.stderr
        assert "ops delivered=1" in once.stdout
        ids = [r["headers"]["webhook-id"] for r in receiver.requests]
        assert len(ids) == 2 and ids[0] == ids[1]  # redelivered after the crash, same idempotency key
        assert receiver.requests[1]["verified"] and receiver.requests[1]["data"]["data"]["subject"] == "c-1"
        again = subprocess.run(args + ["--once"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert "no deliveries" in again.stdout and len(receiver.requests) == 2  # committed after delivery
    finally:
        receiver.close()
