"""Bad preferences and labels go to feedback.dlq with a reason and a counter (real broker, real producer); the
good ones still land."""
from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from connectors.kafka import producer, read_topic
from schemas.dlq import DeadLetter
from schemas.preference import Label, Preference
from schemas.topics import FEEDBACK_DLQ, LABELS, PREFERENCES
from tests.helpers import table_rows

pytestmark = pytest.mark.integration

REASONS = {"invalid_json", "invalid_utf8", "validation_error", "unsupported_schema_version"}


def _bad(valid: dict) -> list[tuple[str, bytes]]:
    return [("invalid_json", b'{"pref_id": "x", '), ("invalid_utf8", b'{"a": "\xff\xfe"}'),
            ("validation_error", json.dumps({k: v for k, v in valid.items() if k != "passed" and k != "prompt"})
             .encode()),
            ("unsupported_schema_version", json.dumps(dict(valid, schema_version=99)).encode())]


async def _publish(s, topic: str, values: list[bytes]) -> None:
    async with producer(s) as prod:
        for i, v in enumerate(values):
            await prod.send_and_wait(s.topic(topic), value=v, key=f"k{i}".encode())


def _dead_letters(s) -> list[DeadLetter]:
    return [DeadLetter.from_record(m.headers, m.key, m.value)
            for m in asyncio.run(read_topic(s, s.topic(FEEDBACK_DLQ)))]


def test_bad_preferences_are_dead_lettered_and_good_ones_land(kafka_settings) -> None:
    from streams.curation.sink import land_preferences

    s = kafka_settings
    good = [Preference(pref_id=f"p{i}", prompt=f"q{i}", candidates=["a", "b"], chosen_idx=1, rejected_idx=0)
            for i in range(3)]
    bad = _bad(json.loads(good[0].model_dump_json()))
    values = [good[0].model_dump_json().encode(), *[v for _, v in bad],
              *[p.model_dump_json().encode() for p in good[1:]]]
    asyncio.run(_publish(s, PREFERENCES, values))
    reg = CollectorRegistry()

    async def land(seconds: float, registry: CollectorRegistry = reg) -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(land_preferences(s, stop, registry=registry))
        await asyncio.sleep(seconds)
        stop.set()
        return await task

    assert asyncio.run(land(8)) == 3
    assert sorted(table_rows(s, "preferences", ["pref_id"]).column("pref_id").to_pylist()) == ["p0", "p1", "p2"]
    dls = _dead_letters(s)
    assert sorted(d.reason for d in dls) == sorted(r for r, _ in bad)
    assert {d.value for d in dls} == {v for _, v in bad}  # the original bytes, unchanged
    assert all(d.topic == s.topic(PREFERENCES) and d.error for d in dls)
    for reason in REASONS:
        assert reg.get_sample_value("alignloop_feedback_dead_letters_total",
                                    {"topic": s.topic(PREFERENCES), "reason": reason}) == 1
    asyncio.run(land(4, CollectorRegistry()))  # a restarted lander re-reads nothing: no second dead letter
    assert len(_dead_letters(s)) == len(bad)


@pytest.mark.parametrize("follower", ["drift", "escalation"])
def test_bad_labels_are_dead_lettered_once_and_good_ones_are_learned(kafka_settings, follower) -> None:
    """The monitor's label followers: the drift hook dead-letters (calibration); with drift disabled the
    escalation hook (learning judge) does."""
    from streams.drift.labels import follow_labels

    from tests.unit._drift_helpers import judged_stream

    s = kafka_settings
    judged = list(judged_stream(3, 20))
    good = [Label(label_id=f"l{i}", trace_id=j.trace.trace_id, passed=j.outcome == "pass")
            for i, j in enumerate(judged[:4])]
    bad = _bad(json.loads(good[0].model_dump_json()))
    asyncio.run(_publish(s, LABELS, [*(g.model_dump_json().encode() for g in good), *(v for _, v in bad)]))
    reg = CollectorRegistry()

    async def run() -> float:
        async with producer(s) as prod:
            async def send(topic, key, value, headers=None, partition=None):
                return await prod.send(topic, value=value, key=key, headers=headers, partition=partition)

            if follower == "drift":
                from streams.drift.config import load_drift_config
                from streams.drift.wiring import build_hook

                hook = build_hook(s, reg, send, load_drift_config(s.drift_config))
            else:
                from streams.escalation.wiring import EscalationHook, EscalationMetrics
                from streams.feedback import FeedbackDeadLetters
                from streams.judges.config import JudgesConfig

                hook = EscalationHook(JudgesConfig(), send, s.topic("judge.escalations"), EscalationMetrics(reg))
                hook.labels_topic = s.topic(LABELS)
                hook.dead_letters = FeedbackDeadLetters(send, s.topic(FEEDBACK_DLQ), reg)
            await asyncio.gather(*await hook(judged))  # the traces the labels are about
            stop = asyncio.Event()
            task = asyncio.create_task(follow_labels(s, s.topic(LABELS), {0: -1, 1: -1}, hook.on_labels, stop))
            await asyncio.sleep(6)
            stop.set()
            await task
        if follower == "drift":
            return reg.get_sample_value("alignloop_calibration_labels_total", {"matched": "true"})
        return reg.get_sample_value("alignloop_learning_judge_labels_total")

    assert asyncio.run(run()) == len(good)  # every good label joined / learned
    dls = _dead_letters(s)
    assert sorted(d.reason for d in dls) == sorted(r for r, _ in bad)
    assert all(d.topic == s.topic(LABELS) and d.key is not None for d in dls)
    for reason in REASONS:
        assert reg.get_sample_value("alignloop_feedback_dead_letters_total",
                                    {"topic": s.topic(LABELS), "reason": reason}) == 1
