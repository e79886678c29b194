"""Detector state survives a worker restart: restored monitors raise no alarm on stable traffic, skip replays,
and still detect a real change; a missing or corrupt state file means a silent warm-up."""
import asyncio
import itertools

from alignloop.simulate import Drift, Simulator
from connectors.delta_sink import DeltaSink, read_table
from schemas.tables import DRIFT_EVENTS_TABLE, TABLES
from streams.drift.bank import MonitorBank
from streams.drift.hook import DriftHook
from streams.drift.metrics import DriftMetrics
from streams.drift.state import StateFile
from prometheus_client import CollectorRegistry

from tests.unit._drift_helpers import judged_stream, small_config


def batches(it, n=200):
    it = iter(it)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


def run(bank, stream):
    alarms = []
    for b in batches(stream):
        alarms += bank.observe(b)
    return alarms


def test_restored_bank_matches_the_uninterrupted_one_and_raises_no_alarm():
    cfg = small_config()
    sim = Simulator(seed=3, rate_hint=500)
    first = list(judged_stream(3, 6000, sim=sim))
    rest = list(judged_stream(3, 10_000, start=6000, sim=sim))
    a = MonitorBank(cfg)
    assert run(a, first) == []
    snapshot = a.dumps()
    assert a.warming() == 0
    restored = MonitorBank.loads(snapshot, cfg)
    assert restored.warming() == 0 and restored.seen == 6000
    assert run(a, rest) == [] and run(restored, rest) == []
    for key, m in a.monitors.items():  # identical state after the same traffic
        assert restored.monitors[key].ref_mean == m.ref_mean
    fresh = MonitorBank(cfg)
    run(fresh, rest[:200])
    assert fresh.warming() == len(fresh.monitors) > 0  # what a restart without state would cost


def test_replayed_batch_is_not_counted_twice():
    cfg = small_config()
    bank = MonitorBank(cfg)
    traces = list(judged_stream(4, 1000))
    run(bank, traces)
    before = {k: (m._n, m._blocks) for k, m in bank.monitors.items()}
    assert bank.observe(traces[-300:]) == []
    assert bank.seen == 1000
    assert {k: (m._n, m._blocks) for k, m in bank.monitors.items()} == before


def _hook(cfg, tmp_path, sent, registry=None):
    async def send(topic, key, value):
        sent.append((topic, key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    schema, parts = TABLES[DRIFT_EVENTS_TABLE]
    sink = DeltaSink(str(tmp_path / "lake" / DRIFT_EVENTS_TABLE), schema, parts, name="t-drift")
    return DriftHook(cfg, send=send, metrics=DriftMetrics(registry or CollectorRegistry()), drift_topic="drift.events",
                     train_topic="train.requests", events_sink=sink, state=StateFile(tmp_path / "state.pkl"),
                     worker="w1")


def test_hook_restart_restores_state_then_detects_a_real_change(tmp_path):
    cfg = small_config()
    sim = Simulator(seed=5, rate_hint=500)
    sent: list = []

    async def scenario():
        h1 = _hook(cfg, tmp_path, sent)
        for b in batches(judged_stream(5, 6000, sim=sim)):
            await h1(b)
        await h1.save()
        assert sent == []
        h2 = _hook(cfg, tmp_path, sent, CollectorRegistry())  # the restarted worker
        assert h2.bank.seen == 6000 and h2.bank.warming() == 0
        for b in batches(judged_stream(5, 6000, start=6000, sim=sim)):
            await h2(b)
        assert sent == [], "a restart must not raise a false alarm"
        sim.drifts = [Drift(at=12_000, changes={"tool_failure_rate": 0.5})]
        for b in batches(judged_stream(5, 3000, start=12_000, sim=sim)):
            await h2(b)
        return h2

    h2 = asyncio.run(scenario())
    drift_msgs = [v for t, _, v in sent if t == "drift.events"]
    assert any(b'"signal":"tool_error"' in v for v in drift_msgs)
    rows = read_table(str(tmp_path / "lake" / DRIFT_EVENTS_TABLE)).to_pylist()
    assert {r["signal"] for r in rows} >= {"tool_error"}
    row = next(r for r in rows if r["signal"] == "tool_error")
    assert row["magnitude"] > 0.1 and row["example_trace_ids"] and row["policy_id"] == "base"
    assert any(t == "train.requests" for t, _, _ in sent) == (len(rows) >= cfg.trigger.drift_events)
    assert h2.metrics.events.labels("base", "tool_error")._value.get() >= 1


def test_corrupt_or_foreign_state_means_a_silent_warm_up(tmp_path):
    cfg = small_config()
    (tmp_path / "state.pkl").write_bytes(b"not a pickle")
    h = _hook(cfg, tmp_path, [])
    assert h.bank.seen == 0
    assert h.metrics.state_restores.labels("discarded")._value.get() == 1
    other = small_config()
    other.monitor.block = 60
    blob = MonitorBank(cfg).dumps()
    try:
        MonitorBank.loads(blob, other)
    except ValueError as exc:
        assert "different drift config" in str(exc)
    else:
        raise AssertionError("a snapshot from another config must be refused")
