"""RolloutClient on a real broker: follows the compacted topic, serves new versions, survives an outside producer's
bad records, and serves its disk cache when the broker cannot be reached at start."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from connectors.kafka import producer
from connectors.rollout_client import RolloutClient
from schemas.topics import ROLLOUT

pytestmark = pytest.mark.integration


def _rec(agent: str, version: int, weight: int, **over) -> dict:
    d = {"agent_id": agent, "rollout_id": "r1", "version": version, "stage": "canary",
         "baseline": {"policy_id": "base"},
         "candidate": {"policy_id": "p1", "adapter_id": "a@1", "adapter_hash": "sha256:1"},
         "weights": {"candidate": weight, "baseline": 100 - weight}, "updated_at": "2026-12-01T00:00:00Z"}
    d.update(over)
    return d


def _publish(settings, values: list[tuple[str, bytes | None]]) -> None:
    async def go() -> None:
        async with producer(settings) as prod:
            for key, value in values:
                await prod.send_and_wait(settings.topic(ROLLOUT), key=key.encode(), value=value)
    asyncio.run(go())


def _until(pred, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_client_follows_survives_bad_records_and_serves_its_cache(kafka_settings, tmp_path) -> None:
    s = kafka_settings
    _publish(s, [("bot", json.dumps(_rec("bot", 1, 5)).encode()),
                 ("bot", json.dumps(_rec("bot", 2, 25)).encode())])
    cache = tmp_path / "flags.json"
    client = RolloutClient(s, cache_path=cache).start(wait_s=20)
    try:
        assert client.ready and client.caught_up and client.flag("bot").version == 2
        # an outside producer writes garbage between two good versions
        _publish(s, [("bot", b"{broken"),
                     ("bot", json.dumps(_rec("bot", 3, 30, weights={"candidate": 30, "baseline": 30})).encode()),
                     ("bot", json.dumps(_rec("bot", 1, 99)).encode()),
                     ("bot", json.dumps(_rec("bot", 9, 50, schema_version=2)).encode()),
                     ("bot", None),
                     ("bot", json.dumps(_rec("bot", 4, 50)).encode())])
        assert _until(lambda: client.flag("bot").version == 4)
        st = client.stats
        assert st["applied"] == 3
        assert st["invalid"] == {"not_json": 1, "weights": 1, "future_schema_version": 1}
        assert st["ignored"] == {"version_not_higher": 1, "tombstone": 1}
        served = {c: client.variant("bot", c)[0] for c in (f"conv-{i}" for i in range(400))}
        assert 150 < list(served.values()).count("candidate") < 250  # 50%
    finally:
        client.stop()
    assert json.loads(cache.read_text())["flags"][0]["version"] == 4

    # broker unreachable at start (nothing listens on port 9): the cache answers, same assignment
    down = s.model_copy(update={"kafka_bootstrap": "127.0.0.1:9"})
    offline = RolloutClient(down, cache_path=cache).start(wait_s=5)
    try:
        assert offline.ready and offline.cache_loaded and not offline.caught_up
        assert {c: offline.variant("bot", c)[0] for c in served} == served
        assert _until(lambda: offline.last_error is not None, 20)  # still trying, and says why
    finally:
        offline.stop()


def test_simulate_fleet_publishes_stamped_traces(kafka_settings, monkeypatch) -> None:
    from typer.testing import CliRunner

    from alignloop.cli import app
    from connectors.kafka import read_topic
    from schemas.topics import TRACES
    from schemas.trace import Trace

    s = kafka_settings
    _publish(s, [("bot", json.dumps(_rec("bot", 1, 50)).encode())])
    monkeypatch.setenv("ALIGNLOOP_KAFKA_BOOTSTRAP", s.kafka_bootstrap)
    monkeypatch.setenv("ALIGNLOOP_TOPIC_PREFIX", s.topic_prefix)
    monkeypatch.setenv("ALIGNLOOP_HOME", str(s.home))
    res = CliRunner().invoke(app, ["simulate", "--fleet", "--profile", "unsafe", "--agent", "bot",
                                   "--conversations", "40", "--turns", "2-4", "--seed", "3"])
    assert res.exit_code == 0, res.output
    traces = [Trace.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(TRACES)))]
    assert 80 <= len(traces) <= 160 and f"fleet: {len(traces)} turns" in res.output
    arms = {t.metadata["rollout"]["variant"] for t in traces}
    assert arms == {"baseline", "candidate"}
    assert all((t.policy_id, t.adapter_hash) == (("p1", "sha256:1") if t.metadata["rollout"]["variant"] ==
                                                 "candidate" else ("base", None)) for t in traces)
    out = " ".join(res.output.split())
    assert "switched mid-way by a ramp: 0; moved back by a rollback: 0; flag records applied 1" in out


def test_clients_ride_out_a_broker_stop(broker, kafka_settings, tmp_path) -> None:
    if not hasattr(broker, "stop"):
        pytest.skip("external cluster: the test cannot restart it")  # only with ALIGNLOOP_TEST_BOOTSTRAP
    s = kafka_settings
    _publish(s, [("bot", json.dumps(_rec("bot", 1, 25)).encode())])
    cache = tmp_path / "flags.json"
    running = RolloutClient(s, cache_path=cache).start(wait_s=20)
    late = None
    try:
        assert running.flag("bot").version == 1
        served = {c: running.variant("bot", c)[0] for c in (f"k{i}" for i in range(200))}
        broker.stop(kill=True)  # the broker dies
        try:
            # the running agent keeps answering; an agent started during the outage answers from the cache
            assert {c: running.variant("bot", c)[0] for c in served} == served
            late = RolloutClient(s, cache_path=cache).start(wait_s=5)
            assert late.ready and late.cache_loaded and not late.caught_up
            assert {c: late.variant("bot", c)[0] for c in served} == served
        finally:
            broker.start()
        _publish(s, [("bot", json.dumps(_rec("bot", 2, 50)).encode())])
        assert _until(lambda: running.flag("bot").version == 2 and late.flag("bot").version == 2, 60)
        assert _until(lambda: late.caught_up)  # set just after the batch that applied v2
    finally:
        running.stop()
        if late is not None:
            late.stop()
