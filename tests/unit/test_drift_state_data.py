"""Drift state is data: JSON validated before use. A forged, corrupt, future or overflowing snapshot is refused
(counted by reason) and the monitor warms up and keeps working; a genuine one restores exactly."""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alignloop.simulate import Drift, Simulator
from schemas.preference import Label
from streams.drift.hook import DriftHook
from streams.drift.metrics import DriftMetrics
from streams.drift.state import StateFile
from tests.unit._drift_helpers import judged_stream, small_config
from tests.unit.test_drift_restart import batches

ROOT = Path(__file__).resolve().parents[2]


class Pwn:
    """Unpickling this runs a shell command."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


async def _send(topic, key, value):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


def _hook(cfg, path, sent=None, registry=None):
    async def send(topic, key, value):
        if sent is not None:
            sent.append((topic, value))
        return await _send(topic, key, value)

    return DriftHook(cfg, send=send, metrics=DriftMetrics(registry or CollectorRegistry()), drift_topic="drift.events",
                     train_topic="train.requests", state=StateFile(path))


def _warm_hook(cfg, path):
    async def go():
        h = _hook(cfg, path)
        traces = list(judged_stream(5, 6000))
        for b in batches(traces):
            await h(b)
        labels = [(0, i, Label(label_id=str(i), trace_id=j.trace.trace_id, passed=j.outcome == "pass")
                   .model_dump_json().encode()) for i, j in enumerate(traces[:300])]
        await h.on_labels(labels)
        return h
    return asyncio.run(go())


def test_no_pickle_anywhere_in_streams():
    loaders = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle|marshal|shelve|joblib)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "streams").rglob("*.py") if loaders.search(p.read_text())]
    assert offenders == []


def test_genuine_snapshot_restores_exactly_and_is_json(tmp_path):
    cfg = small_config()
    h = _warm_hook(cfg, tmp_path / "s.json")
    blob = h.dumps()
    doc = json.loads(blob)  # plain JSON, versioned
    assert doc["schema_version"] == 2 and doc["bank"]["seen"] == 6000
    asyncio.run(h.save())
    h2 = _hook(cfg, tmp_path / "s.json")
    assert h2.metrics.state_restores.labels("restored")._value.get() == 1
    assert h2.dumps() == blob  # every monitor, detector, window and store entry came back as it was
    assert h2.tracker.matched == h.tracker.matched == 300


def _forgeries(genuine: bytes, marker: str) -> dict[str, bytes]:
    doc = json.loads(genuine)
    future = dict(doc, schema_version=3)
    overflow = json.loads(genuine)
    overflow["bank"]["seen"] = 2**64 - 1
    zero_std = json.loads(genuine)
    zero_std["bank"]["monitors"][0]["ref_std"] = 0.0
    bad_detector = json.loads(genuine)
    bad_detector["bank"]["monitors"][0]["detector"]["_sum_increase"] = "rm -rf /"
    foreign_attr = json.loads(genuine)
    foreign_attr["bank"]["monitors"][0]["detector"]["__class__"] = "os.system"
    return {"pickle": pickle.dumps(Pwn(marker)), "invalid_json": b'{"schema_version": 2, "bank": ',
            "future": json.dumps(future).encode(), "overflow": json.dumps(overflow).encode(),
            "zero_std": json.dumps(zero_std).encode(), "bad_detector": json.dumps(bad_detector).encode(),
            "foreign_attr": json.dumps(foreign_attr).encode()}


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> bytes:
    return _warm_hook(small_config(), tmp_path_factory.mktemp("genuine") / "g.json").dumps()


@pytest.mark.parametrize("kind,reason", [("pickle", "invalid_json"), ("invalid_json", "invalid_json"),
                                         ("future", "unsupported_schema_version"), ("overflow", "validation_error"),
                                         ("zero_std", "validation_error"), ("bad_detector", "validation_error"),
                                         ("foreign_attr", "validation_error")])
def test_forged_snapshot_is_refused_counted_and_the_monitor_keeps_working(tmp_path, genuine, kind, reason):
    cfg = small_config()
    marker = f"/tmp/pwned-{uuid.uuid4().hex}"
    path = tmp_path / "s.json"
    path.write_bytes(_forgeries(genuine, marker)[kind])
    reg, sent = CollectorRegistry(), []
    h = _hook(cfg, path, sent, reg)
    assert not Path(marker).exists(), "nothing in a snapshot may run"
    assert reg.get_sample_value("alignloop_drift_state_invalid_total", {"reason": reason}) == 1
    assert reg.get_sample_value("alignloop_drift_state_restores_total", {"result": "discarded"}) == 1
    assert h.bank.seen == 0  # a silent warm-up instead

    sim = Simulator(seed=5, rate_hint=500)
    sim.drifts = [Drift(at=6000, changes={"tool_failure_rate": 0.5})]

    async def go():
        for b in batches(judged_stream(5, 9000, sim=sim)):
            await h(b)
        await h.save()  # and checkpointing keeps working

    asyncio.run(go())
    drift = [json.loads(v) for t, v in sent if t == "drift.events"]
    assert drift and all(e["detected_at"] >= "2026" for e in drift)
    assert "tool_error" in {e["signal"] for e in drift}, "drift still detected after the refused snapshot"
    assert json.loads(path.read_bytes())["bank"]["seen"] == 9000


def test_another_config_is_refused_as_other_config(tmp_path):
    cfg = small_config()
    asyncio.run(_warm_hook(cfg, tmp_path / "s.json").save())
    other = small_config()
    other.monitor.block = 60
    reg = CollectorRegistry()
    _hook(other, tmp_path / "s.json", registry=reg)
    assert reg.get_sample_value("alignloop_drift_state_invalid_total", {"reason": "other_config"}) == 1
