"""Drift detector state in the compacted Kafka changelog: a monitor restarted on another host (empty local disk)
restores it; with the cluster unreachable the local file carries it."""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import uuid
from pathlib import Path

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
    assert json.loads(h2.dumps())["bank"]["seen"] == 9000  # and it keeps saving a usable snapshot


class Pwn:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):  # unpickling this runs a shell command
        return os.system, (f"touch {self.path}",)


def test_hostile_changelog_records_run_nothing_and_the_restarted_monitor_keeps_working(kafka_settings, tmp_path):
    """Forged records on drift.state, published by an outside producer under the monitor's key: a pickle that
    would run a command, a save counter of 2**64-1 in front of a genuine body, malformed JSON, a future
    schema_version. The monitor restarted on a new host refuses each (counted), restores the genuine snapshot
    and still detects a later shift; its checkpoints keep working."""
    from alignloop.simulate import Drift, Simulator
    from connectors.kafka import producer
    from schemas.topics import DRIFT_STATE

    s, cfg = kafka_settings, small_config()
    marker = f"/tmp/pwned-{uuid.uuid4().hex}"
    sent: list = []

    async def send(topic, key, value):
        sent.append((topic, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def hook(host: str, registry: CollectorRegistry) -> DriftHook:
        state = KafkaStateStore(s, s.app_id, StateFile(tmp_path / host / "state.json"))
        return DriftHook(cfg, send=send, metrics=DriftMetrics(registry), drift_topic="drift.events",
                         train_topic="train.requests", state=state, worker=host)

    sim = Simulator(seed=5, rate_hint=500)

    async def scenario() -> tuple[DriftHook, CollectorRegistry]:
        h1 = hook("host1", CollectorRegistry())
        for b in batches(judged_stream(5, 6000, sim=sim)):
            await h1(b)
        await h1.save()  # genuine snapshot, counter 1
        genuine = h1.dumps()
        future = json.dumps(dict(json.loads(genuine), schema_version=99)).encode()
        forged = [(2).to_bytes(8, "big") + pickle.dumps(Pwn(marker)),
                  b"\xff" * 8 + genuine,  # a counter of 2**64-1 would win every restore and overflow at the next save
                  (3).to_bytes(8, "big") + b'{"schema_version": 2, "bank": [',
                  (4).to_bytes(8, "big") + future,
                  pickle.dumps(Pwn(marker))]  # no frame at all
        async with producer(s) as prod:
            for value in forged:
                await prod.send_and_wait(s.topic(DRIFT_STATE), value=value, key=s.app_id.encode())
        reg = CollectorRegistry()
        h2 = hook("host2", reg)  # a new host: only the changelog has the state
        assert not Path(marker).exists(), "nothing in a snapshot may run"
        assert h2.bank.seen == 6000 and h2.bank.warming() == 0
        for b in batches(judged_stream(5, 2000, start=6000, sim=sim)):
            await h2(b)
        assert sent == [], "the restored monitors raise no false alarm"
        sim.drifts = [Drift(at=8000, changes={"tool_failure_rate": 0.5})]
        for b in batches(judged_stream(5, 3000, start=8000, sim=sim)):
            await h2(b)
        await h2.save()
        return h2, reg

    h2, reg = asyncio.run(scenario())
    assert not Path(marker).exists()
    assert any(t == "drift.events" and b'"signal":"tool_error"' in v for t, v in sent), "drift still detected"
    count = lambda reason: reg.get_sample_value("alignloop_drift_state_invalid_total", {"reason": reason})  # noqa: E731
    assert count("bad_header") == 2 and count("invalid_json") == 2 and count("unsupported_schema_version") == 1
    assert reg.get_sample_value("alignloop_drift_state_restores_total", {"result": "restored"}) == 1
    # the next start restores what h2 saved (counter continued from the genuine 1, no overflow)
    h3 = hook("host3", CollectorRegistry())
    assert h3.bank.seen == 11_000


def test_monitor_process_started_over_hostile_state_runs_nothing_and_keeps_checkpointing(kafka_settings,
                                                                                       worker_factory, tmp_path):
    """The real monitor process (``alignloop worker --role monitor``) starting over forged drift.state records
    published by an outside producer: nothing runs, each record is counted as refused, the process stays up,
    reads every trace and writes new checkpoints (a counter of 2**64-1 used to crash every one)."""
    import socket
    import urllib.request

    from alignloop.publish import publish
    from alignloop.simulate import Simulator
    from connectors.kafka import producer, read_topic
    from schemas.topics import DRIFT_STATE, TRACES
    from tests.helpers import wait_for

    s = kafka_settings
    marker = f"/tmp/pwned-{uuid.uuid4().hex}"
    body = json.dumps({"schema_version": 2, "bank": {}}).encode()
    forged = [(1).to_bytes(8, "big") + pickle.dumps(Pwn(marker)), b"\xff" * 8 + body,
              (2).to_bytes(8, "big") + b"{not json", (3).to_bytes(8, "big") + body.replace(b": 2", b": 7")]

    async def forge() -> None:
        async with producer(s) as prod:
            for value in forged:
                await prod.send_and_wait(s.topic(DRIFT_STATE), value=value, key=s.app_id.encode())

    asyncio.run(forge())
    drift_yaml = tmp_path / "drift.yaml"
    drift_yaml.write_text("monitor: {block: 50, warmup_blocks: 10}\ncheckpoint_interval_s: 1\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spine = worker_factory(s, "spine").start()
    monitor = worker_factory(s, "monitor")
    monitor.env, monitor.metrics_port = {"ALIGNLOOP_DRIFT_CONFIG": str(drift_yaml)}, port
    monitor.start()
    sim = Simulator(seed=9)
    records = [(r["conversation_id"].encode(), json.dumps(r).encode()) for r, _ in (sim.trace(i) for i in range(1500))]
    asyncio.run(publish(s, s.topic(TRACES), records))

    def metric(name: str, labels: str = "") -> float:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return -1.0
        for line in text.splitlines():
            if line.startswith(name + (labels and "{" + labels + "}")) and not line.startswith("#"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    wait_for(lambda: metric("alignloop_drift_traces_total") >= 1500, 180, what="the monitor to read every trace",
             worker=monitor)
    wait_for(lambda: metric("alignloop_drift_state_saves_total") >= 1, 60, what="a checkpoint", worker=monitor)
    assert spine.alive() and monitor.alive()
    assert not Path(marker).exists(), "nothing in a snapshot may run"
    assert metric("alignloop_drift_state_invalid_total", 'reason="bad_header"') == 1
    assert metric("alignloop_drift_state_invalid_total", 'reason="invalid_json"') == 2
    assert metric("alignloop_drift_state_invalid_total", 'reason="unsupported_schema_version"') == 1
    assert metric("alignloop_drift_state_restores_total", 'result="discarded"') == 1
    ours = [m for m in asyncio.run(read_topic(s, s.topic(DRIFT_STATE))) if m.key == s.app_id.encode()]
    newest = ours[-1].value  # ours: a valid snapshot, its counter not continued from the forged 2**64-1
    assert 1 <= int.from_bytes(newest[:8], "big") < 100 and json.loads(newest[8:])["bank"]["seen"] > 0
