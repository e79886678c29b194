"""Drift detector state in the compacted Kafka changelog: a monitor restarted on another host (empty local disk)
restores it; with the cluster unreachable the local file carries it."""
from __future__ import annotations

import asyncio
import pickle

import pytest
from prometheus_client import CollectorRegistry

from connectors.delta_sink import DeltaSink
from schemas.tables import DRIFT_EVENTS_TABLE, TABLES
from streams.drift.hook import DriftHook
from streams.drift.metrics import DriftMetrics
from streams.drift.state import KafkaStateStore, StateFile
from tests.unit._drift_helpers import judged_stream, small_config
from tests.unit.test_drift_restart import batches

pytestmark = pytest.mark.integration


def test_snapshots_round_trip_through_the_changelog_newest_wins(kafka_settings, tmp_path):
    s = kafka_settings
    a = KafkaStateStore(s, "monitor-a", StateFile(tmp_path / "host1" / "state.pkl"))
    a.save(b"first")
    a.save(b"second")
    KafkaStateStore(s, "monitor-b", StateFile(tmp_path / "host1" / "b.pkl")).save(b"other monitor")
    on_new_host = KafkaStateStore(s, "monitor-a", StateFile(tmp_path / "host2" / "state.pkl"))
    assert on_new_host.load() == b"second"
    on_new_host.save(b"third")  # continues the sequence: a later restore must not go back to "second"
    assert KafkaStateStore(s, "monitor-a", StateFile(tmp_path / "host1" / "state.pkl")).load() == b"third"


def test_cluster_down_falls_back_to_the_local_file(make_settings, tmp_path):
    down = make_settings(kafka_bootstrap="127.0.0.1:1")  # nothing listens there
    store = KafkaStateStore(down, "m", StateFile(tmp_path / "state.pkl"), timeout_s=3)
    store.save(b"kept locally")
    assert KafkaStateStore(down, "m", StateFile(tmp_path / "state.pkl"), timeout_s=3).load() == b"kept locally"


def test_drift_hook_restarted_elsewhere_restores_monitors_without_alarms(kafka_settings, tmp_path):
    s, cfg = kafka_settings, small_config()
    sent: list = []

    async def send(topic, key, value):
        sent.append(topic)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def hook(host: str) -> DriftHook:
        schema, parts = TABLES[DRIFT_EVENTS_TABLE]
        sink = DeltaSink(str(tmp_path / "lake" / DRIFT_EVENTS_TABLE), schema, parts, name="t-drift")
        state = KafkaStateStore(s, s.app_id, StateFile(tmp_path / host / "state.pkl"))
        return DriftHook(cfg, send=send, metrics=DriftMetrics(CollectorRegistry()), drift_topic="drift.events",
                         train_topic="train.requests", events_sink=sink, state=state, worker=host)

    async def scenario() -> DriftHook:
        h1 = hook("host1")
        for b in batches(judged_stream(5, 6000)):
            await h1(b)
        await h1.save()
        h2 = hook("host2")  # no local file there: only the changelog has the state
        assert h2.bank.seen == 6000 and h2.bank.warming() == 0
        for b in batches(judged_stream(5, 3000, start=6000)):
            await h2(b)
        return h2

    h2 = asyncio.run(scenario())
    assert sent == [], "a restart must not raise a false alarm"
    assert h2.metrics.state_restores.labels("restored")._value.get() == 1
    assert pickle.loads(h2.dumps())["bank"]  # and it keeps saving a usable snapshot
