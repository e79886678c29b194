"""Erasure reaches the drift monitors' state (issue 17): two monitors have seen a planted conversation (one still
running and following drift.erase, one stopped), both saved to drift.state and their state files; after
``erase_drift_state`` no record of the topic and neither file holds its trace id, conversation id, pseudonym or
text, every other entry is intact, and both monitors restart from the erased state and keep working."""
from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from connectors.erasure_key import erasure_keys
from connectors.kafka_erase import read_retained
from schemas.preference import Label
from schemas.topics import DRIFT_ERASE, DRIFT_STATE
from streams.drift.erase import erase_drift_state
from streams.drift.hook import DriftHook
from streams.drift.labels import follow_labels
from streams.drift.metrics import DriftMetrics
from streams.drift.state import KafkaStateStore, StateFile
from tests.unit._drift_helpers import judged_stream, small_config
from tests.unit.test_drift_restart import batches

pytestmark = pytest.mark.integration

WORD, PSEUDONYM = "quokkafrabjous", "<EMAIL_7e7e7e7e>"


async def _send(topic, key, value):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


def _ids(snapshot: bytes) -> set[str]:
    """Every trace id a snapshot names (the confidence store and misjudged examples)."""
    s = json.loads(snapshot[8:])
    return {i[0] for i in s["tracker"]["store"]["items"]} | {m[0] for w in s["tracker"]["windows"]
                                                             for m in w["misjudged"]}


def test_erasure_reaches_running_and_stopped_monitors_state(kafka_settings):
    s, cfg = kafka_settings, small_config()
    keys = erasure_keys(s)
    worker = s.home / "worker"

    def hook(app: str, host: str) -> DriftHook:
        state = KafkaStateStore(s, app, StateFile(worker / f"drift-state-{app}-{host}.json"))
        return DriftHook(cfg, send=_send, metrics=DriftMetrics(CollectorRegistry()), drift_topic="drift.events",
                         train_topic="train.requests", state=state, worker=host, trace_key=keys.trace)

    stream = list(judged_stream(3, 700))
    base = stream[650]
    planted = base.model_copy(update={"trace": base.trace.model_copy(update={
        "trace_id": "planted-trace-1", "conversation_id": "planted-conv-1",
        "user_message": f"my address is {PSEUDONYM}, the word is {WORD}",
        "final_response": f"noted {WORD}"})})
    stream[650] = planted
    ok = planted.verdicts[0].passed
    label = Label(label_id="l1", trace_id="planted-trace-1", policy_id=planted.trace.policy_id, passed=not ok)
    needles = [b"planted-trace-1", b"planted-conv-1", WORD.encode(), PSEUDONYM.encode()]

    async def scenario() -> dict:
        running, stopped = hook(s.app_id, "host1"), hook("other-monitor", "host2")
        for h in (running, stopped):
            for b in batches(stream):
                await h(b)
            await h.on_labels([(0, 0, label.model_dump_json().encode())])  # a misjudged example with its snippet
            await h.save()
        for h in (running, stopped):  # both saw it: in the file and on the topic
            assert "planted-trace-1" in _ids(h.state.fallback.load())
        stop = asyncio.Event()
        follower = asyncio.create_task(follow_labels(s, s.topic(DRIFT_ERASE), dict(running.erase_offsets),
                                                     running.on_erase, stop, unknown="earliest"))
        report = await erase_drift_state(s, ["planted-trace-1"], ["planted-conv-1"], erasure_id="e1", wait_s=10)
        stop.set()
        await follower
        assert running.tracker.store.get("planted-trace-1") is None  # gone from memory too
        report["before"] = {h.state.key: _ids(h.state.fallback.load()) for h in (running, stopped)}
        return report

    report = asyncio.run(scenario())
    assert report["applied_by_monitors"] == [s.app_id] and report["cleaned_here"] == ["other-monitor"]
    assert report["remaining"] == 0 and report["partitions_cut"]
    topic = [m.value or b"" for m in asyncio.run(read_retained(s, s.topic(DRIFT_STATE)))]
    commands = [m.value or b"" for m in asyncio.run(read_retained(s, s.topic(DRIFT_ERASE)))]
    files = [p.read_bytes() for p in worker.glob("drift-state-*.json")]
    assert len(files) == 2 and commands
    for blob in topic + commands + files:
        assert not any(n in blob for n in needles)
    expected = {t.trace.trace_id for t in stream} - {"planted-trace-1"}
    assert all(ids == expected for ids in report["before"].values())  # every other entry intact

    async def restarted() -> None:
        for app in (s.app_id, "other-monitor"):  # new hosts: only the topic has the state
            h = hook(app, "host3")
            assert h.metrics.state_restores.labels("restored")._value.get() == 1
            assert h.bank.seen == 700 and len(h.tracker.store) == 699
            for b in batches(list(judged_stream(3, 300, start=700))):
                await h(b)
            await h.save()
            assert h.bank.seen == 1000

    asyncio.run(restarted())
